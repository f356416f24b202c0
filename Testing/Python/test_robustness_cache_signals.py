"""The model cache and termination signals (issue 18).

Cache: ``models --clear-cache NAME`` takes only a registered model name (a path, ``..`` or a
separator is refused, exit 2, nothing touched); ``--clear-cache`` deletes only the folders the
package created, each of which holds a marker file, and leaves everything else in the cache folder
(which ``$TEXTLESIONSEG_CACHE`` may point at a shared folder), saying so for folders that look like
an unmarked cache entry.

Signals: SIGTERM and SIGHUP to a running ``textlesionseg segment`` are handled like Ctrl+C: exit
128 + signal (143, 129; Ctrl+C 130), one line "cancelled", nothing written. A real console script
on a slow tiny model is signalled while its model is mid-run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from TextLesionSegLib.cli import main
from TextLesionSegLib.models import registry as reg
from TextLesionSegLib.worker import testing as tiny

TEXT = "round hyperdense mass in the right lung"


@pytest.fixture()
def site(tmp_path: Path, monkeypatch) -> Path:
    """A site registry with a bundled model ("tiny") and a file:// one ("remote"); the cache in tmp."""
    path = tiny.write_test_registry(tmp_path / "site", {"tiny": {}, "remote": {}})
    data = json.loads(path.read_text(encoding="utf-8"))
    remote = data["models"][1]
    source = path.parent / remote["weights"].pop("path")
    remote["weights"]["url"] = (source / "model.safetensors").as_uri()
    remote["weights"]["config"] = json.loads((source / "config.json").read_text(encoding="utf-8"))
    path.write_text(json.dumps(data), encoding="utf-8")
    monkeypatch.setenv("TEXTLESIONSEG_EXTRA_REGISTRY", str(path))
    monkeypatch.setenv("TEXTLESIONSEG_CACHE", str(tmp_path / "cache"))
    return path


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its content (None for folders and links)."""
    out: dict[str, bytes | None] = {}
    for p in sorted(root.rglob("*")):
        out[str(p.relative_to(root))] = p.read_bytes() if p.is_file() and not p.is_symlink() else None
    return out


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _foreign(cache: Path, old_entry: bool = True) -> None:
    """What a shared folder may hold besides our cache: a foreign folder, a file, a link to a
    marked folder elsewhere, and (``old_entry``) an entry's folder without a marker."""
    (cache / "holiday-photos").mkdir(parents=True)
    (cache / "holiday-photos" / "beach.jpg").write_bytes(b"\xff\xd8 not ours")
    (cache / "notes.txt").write_text("mine", encoding="utf-8")
    if old_entry:  # an entry's name, but made by an older version (no marker)
        (cache / "remote-v0.0.1").mkdir()
        (cache / "remote-v0.0.1" / "model.safetensors").write_bytes(b"old")
    elsewhere = cache.parent / "elsewhere"
    elsewhere.mkdir()
    reg.mark_cache_folder(elsewhere, "download")  # marked, but outside the cache: only reached by a link
    (elsewhere / "precious.txt").write_text("keep", encoding="utf-8")
    (cache / "link-out").symlink_to(elsewhere, target_is_directory=True)


def test_clear_cache_deletes_only_marked_entries_foreign_folders_and_files_survive(site, tmp_path, capsys):
    cache = tmp_path / "cache"
    _foreign(cache, old_entry=False)
    assert main(["models", "--download", "remote"]) == 0
    downloaded = cache / "remote-v0.0.1"
    marker = json.loads((downloaded / reg.CACHE_MARKER).read_text(encoding="utf-8"))
    assert marker["tool"] == "textlesionseg" and marker["kind"] == "download" and marker["model"] == "remote"
    # the text caches mark their folder too
    from TextLesionSegLib.models import text_encoders as te

    torch = pytest.importorskip("torch")
    phrases = te.PhraseEmbeddingCache("some-text-model")
    phrases.add(["liver"], torch.zeros(1, 4))
    phrases._save_disk()
    te.SentenceFeatureCache("some-text-model", 16).put("a lesion", torch.zeros(3, 4))
    assert reg.is_marked_cache_folder(cache / "text_embeddings")
    before = {k: v for k, v in _tree(tmp_path).items()
              if not k.startswith(("cache/remote-v0.0.1", "cache/text_embeddings"))}
    capsys.readouterr()

    assert main(["models", "--clear-cache"]) == 0
    out = capsys.readouterr().out
    assert "deleted 2 downloaded model folder(s)" in out, out
    assert not downloaded.exists() and not (cache / "text_embeddings").exists()
    assert _tree(tmp_path) == before  # foreign folder, file, the link and its marked target: untouched
    assert (tmp_path / "elsewhere" / "precious.txt").read_text(encoding="utf-8") == "keep"


def test_unmarked_entries_are_kept_and_named(site, tmp_path, capsys):
    cache = tmp_path / "cache"
    _foreign(cache)
    before = _tree(tmp_path)
    for argv in (["models", "--clear-cache"], ["models", "--clear-cache", "remote"]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "deleted 0 downloaded model folder(s)" in out and "kept 1 folder(s) without textlesionseg's cache " \
            "marker" in out and str(cache / "remote-v0.0.1") in out, out
        assert "holiday-photos" not in out  # plainly foreign: not ours to mention
        assert _tree(tmp_path) == before


@pytest.mark.parametrize("name", ["../x", "/etc", "a/b", "..", "../../x", "a\\b", "C:x", "remote/../../x", "nope"])
def test_clear_cache_refuses_anything_but_a_registered_name_touching_nothing(site, tmp_path, capsys, name):
    cache = tmp_path / "cache"
    assert main(["models", "--download", "remote"]) == 0
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("outside the cache", encoding="utf-8")
    reg.mark_cache_folder(tmp_path / "x", "download")  # even a marked folder outside is never reached
    (cache / "a").mkdir()
    reg.mark_cache_folder(cache / "a", "download")
    (cache / "a" / "b").mkdir()
    before = _tree(tmp_path)
    capsys.readouterr()
    assert main(["models", "--clear-cache", name]) == 2
    line = _one_line(capsys.readouterr().err)
    assert repr(name) in line and "known models: " in line and "tiny" in line and "remote" in line, line
    assert _tree(tmp_path) == before


def test_a_registered_entry_is_removed_downloaded_or_imported(site, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert main(["models", "--download", "remote"]) == 0
    (cache / "other-tool").mkdir()
    assert main(["models", "--clear-cache", "remote"]) == 0
    assert "deleted 1 downloaded model folder(s)" in capsys.readouterr().out
    assert not (cache / "remote-v0.0.1").exists() and (cache / "other-tool").is_dir()
    assert main(["models", "--import", "remote", str(site.parent / "weights" / "remote" / "model.safetensors")]) == 0
    marker = json.loads((cache / "remote-v0.0.1" / reg.CACHE_MARKER).read_text(encoding="utf-8"))
    assert marker["kind"] == "import"
    capsys.readouterr()
    assert main(["models", "--json", "remote"]) == 0
    assert json.loads(capsys.readouterr().out)["models"][0]["weights"] == "cached"  # the marker does not disturb
    assert reg.default_registry().clear_cache("remote") == [cache / "remote-v0.0.1"]
    assert sorted(p.name for p in cache.iterdir()) == ["other-tool"]


@pytest.mark.parametrize("field,value", [("name", "../evil"), ("name", "/etc"), ("name", "a/b"), ("name", ".."),
                                         ("version", "1/../../x"), ("version", "..")])
def test_a_registry_entry_whose_name_or_version_is_a_path_is_refused(tmp_path, field, value):
    """The cache folder is ``<name>-v<version>``: neither may climb out of the cache folder."""
    path = tiny.write_test_registry(tmp_path / "site", {"tiny": {}})
    data = json.loads(path.read_text(encoding="utf-8"))
    data["models"][0][field] = value
    path.write_text(json.dumps(data), encoding="utf-8")
    from TextLesionSegLib.errors import ModelError

    with pytest.raises(ModelError, match="not a plain name"):
        reg.Registry([path], cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


# ---- signals --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def slow_site(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("signals")
    started = folder / "started"
    registry = tiny.write_test_registry(folder / "site", {"slow": {"sleep_per_window": 0.4, "started_file": str(started)}})
    return {"registry": registry, "ct": tiny.write_phantom(folder / "ct.nrrd", size=48), "started": started}


def _default_stop_signals() -> None:
    """In the child before exec: SIGHUP/SIGTERM/SIGINT back to their defaults."""
    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTLESIONSEG_")}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signame,code", [("SIGTERM", 143), ("SIGHUP", 129), ("SIGINT", 130)])
def test_a_signal_mid_run_is_a_cancel_exit_128_plus_signal_one_line_nothing_written(slow_site, tmp_path, signame,
                                                                                    code):
    started = slow_site["started"]
    started.unlink(missing_ok=True)
    out, cache, logs = tmp_path / "out", tmp_path / "cache", tmp_path / "logs"
    out.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "TextLesionSegLib.cli", "segment", str(slow_site["ct"]), "--text", TEXT,
         "--model", "slow", "--device", "cpu", "--output", str(out / "o.seg.nrrd"), "--labelmap",
         str(out / "o.nii.gz"), "--report", str(out / "o.json"), "--overlay", str(out / "o.png")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env(TEXTLESIONSEG_EXTRA_REGISTRY=str(slow_site["registry"]), TEXTLESIONSEG_CACHE=str(cache),
                 TEXTLESIONSEG_LOG_DIR=str(logs)),
        # the CLI keeps an ignored SIGHUP (a run under nohup must survive the terminal closing), and a
        # child inherits it: start it as from a terminal, whatever the test session was started under
        preexec_fn=_default_stop_signals,
    )
    try:
        deadline = time.monotonic() + 180
        while not started.exists():  # the model's first window: the run is surely mid-way
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the slow model never started"
            time.sleep(0.05)
        time.sleep(0.3)
        t0 = time.monotonic()
        proc.send_signal(getattr(signal, signame))
        stdout, stderr = proc.communicate(timeout=60)
        stop_s = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, stderr
    line = _one_line(stderr)
    assert line.startswith("textlesionseg: cancelled"), line
    assert (signame in line) == (signame != "SIGINT"), line
    assert stdout == ""
    assert list(out.iterdir()) == []  # no output, no .part or temporary file
    assert not logs.exists()  # a cancel is not an internal error
    assert not cache.exists() or not list(cache.rglob("*.part"))
    assert stop_s < 10, f"took {stop_s:.1f} s to stop"


def test_a_second_stop_signal_does_not_interrupt_the_clean_up_of_the_first():
    """``_raise_cancelled`` raises once; while that cancel unwinds, more signals are let go."""
    import TextLesionSegLib.cli as cli
    from TextLesionSegLib.errors import Cancelled, classify

    previous = cli.install_signal_handlers()
    try:
        with pytest.raises(Cancelled) as info:
            cli._raise_cancelled(signal.SIGTERM, None)
        assert info.value.exit_code == 143 and isinstance(info.value, KeyboardInterrupt)
        assert classify(info.value).exit_code == 143 and classify(info.value).message == "cancelled (SIGTERM)"
        assert cli._raise_cancelled(signal.SIGHUP, None) is None  # the clean-up goes on
    finally:
        cli.restore_signal_handlers(previous)
    with pytest.raises(Cancelled) as info:  # handlers restored: the next run stops again
        cli._raise_cancelled(signal.SIGHUP, None)
    assert info.value.exit_code == 129
    cli.restore_signal_handlers({})


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_handlers_are_installed_only_over_defaults_and_restored():
    """``nohup`` (SIGHUP ignored) and an embedding program's own handler keep theirs; ``main``
    gives back what it replaced."""
    import TextLesionSegLib.cli as cli

    def own(signum, frame):
        pass

    old_term, old_hup = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    try:
        signal.signal(signal.SIGTERM, own)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        previous = cli.install_signal_handlers()
        assert previous == {} and signal.getsignal(signal.SIGTERM) is own
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        with pytest.raises(SystemExit):
            main(["--version"])
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGHUP, old_hup)
