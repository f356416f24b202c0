"""The error contract across the CLI and the worker: an internal error is exit 1 with one line
naming a log file that holds the traceback (never a traceback on the terminal), and nothing is
written. The fault is a real model with a programming error, registered in a site registry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from TextLesionSegLib.worker import testing as tiny
from TextLesionSegLib.worker.protocol import check_request, decode, encode

TEXT = "round hyperdense mass in the right lung"


@pytest.fixture(scope="module")
def buggy_site(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("contract")
    registry = tiny.write_test_registry(folder / "site", {"buggy": {"bug_in_predict": True}})
    return {"registry": registry, "ct": tiny.write_phantom(folder / "ct.nrrd", size=24), "folder": folder}


def test_internal_error_is_one_line_exit_1_with_a_log(buggy_site, tmp_path):
    """The real console entry point in a subprocess: what a user's terminal shows."""
    env = {"TEXTLESIONSEG_EXTRA_REGISTRY": str(buggy_site["registry"]), "TEXTLESIONSEG_LOG_DIR": str(tmp_path / "logs")}
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "TextLesionSegLib.cli", "segment", str(buggy_site["ct"]), "--text", TEXT,
         "--model", "buggy", "--device", "cpu", "--quiet", "--output", str(out / "o.seg.nrrd")],
        capture_output=True, text=True, timeout=300, env={**_base_env(), **env},
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr and "internal error" in lines[0], proc.stderr
    logs = list((tmp_path / "logs").iterdir())
    assert len(logs) == 1 and str(logs[0]) in lines[0]
    text = logs[0].read_text(encoding="utf-8")
    assert "Traceback" in text and "simulated programming error" in text
    assert list(out.iterdir()) == []


def test_worker_reports_the_same_internal_error_as_a_message(buggy_site, monkeypatch):
    from TextLesionSegLib.worker.server import run_request_sync

    monkeypatch.setenv("TEXTLESIONSEG_EXTRA_REGISTRY", str(buggy_site["registry"]))
    out = buggy_site["folder"] / "worker-out"
    message = run_request_sync({"type": "segment", "image_path": str(buggy_site["ct"]), "texts": [TEXT],
                                "model": "buggy", "settings": {"device": "cpu"}, "output_dir": str(out)})
    assert message["type"] == "error" and message["exit_code"] == 1
    assert "ZeroDivisionError" in message["message"] and "\n" not in message["message"]
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize("line", ["", "{", "[]", '"text"', "null", "{\"type\": 1}"])
def test_garbage_request_lines_never_crash_the_protocol(line):
    """What a broken client could send: decode or check refuses it, nothing else happens."""
    from TextLesionSegLib.errors import InputError

    with pytest.raises((ValueError, InputError)):
        check_request(decode(line))


def test_protocol_lines_survive_any_text():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=200, deadline=None)
    @given(st.dictionaries(st.text(max_size=20), st.one_of(st.text(), st.integers(), st.floats(allow_nan=False),
                                                          st.none(), st.lists(st.text(max_size=5), max_size=3))))
    def round_trip(message):
        line = encode(message)
        assert line.count("\n") == 1 and line.endswith("\n")  # one message, one line, always
        assert decode(line) == message

    round_trip()


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("TEXTLESIONSEG_")}
