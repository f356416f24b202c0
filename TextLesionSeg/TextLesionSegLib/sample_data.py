"""Fetch the demo CT (lung2: a real chest CT with a lung tumour) into a folder.

``python -m TextLesionSegLib.sample_data --out DIR`` puts ``lung2_image.nrrd`` and
``lung2_label.nrrd`` in DIR, copied from ``../shared/data`` beside the repository when present,
else extracted from the pyradiomics 3.1.0 source archive on PyPI (BSD-3-Clause; only those
two files are kept). Files already present with the right sha256 are left alone (idempotent).

lung2 is held out: it is for the demo and for measuring, never for training or tuning.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

#: the files and their sha256 (as published in pyradiomics 3.1.0's source archive)
FILES: dict[str, str] = {
    "lung2_image.nrrd": "aa2b94eec79127ed786798ac8dc3c013010e1692d5787bebfae1a1e9685a4651",
    "lung2_label.nrrd": "cef52738dc51aab69a48fe30639da956d2b911b1c2920439c091fab84727657a",
}
PYRADIOMICS = "pyradiomics==3.1.0"
#: the sdist on PyPI, pinned by sha256. pip is given this URL rather than the name because the
#: archive's metadata says 3.0.1a1: pip >= 25 then aborts ``pip download pyradiomics==3.1.0``
#: even with ``--use-deprecated=legacy-resolver``; a URL requirement has no version to mismatch.
PYRADIOMICS_SDIST = (
    "https://files.pythonhosted.org/packages/03/c1/20fc2c50ab1e3304da36d866042a1905a2b05a1431ece35448ab6b4578f2/"
    "pyradiomics-3.1.0.tar.gz#sha256=24722c962a6bbd09bc39c1c67dbffe92435f9692a421fabaae8a6b4511eb48e4"
)
#: the repository root (TextLesionSeg/TextLesionSegLib/sample_data.py -> three levels up)
REPO_ROOT = Path(__file__).resolve().parents[2]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _ok(path: Path) -> bool:
    return path.is_file() and _sha256(path) == FILES[path.name]


def shared_data_dirs() -> list[Path]:
    """Where a team checkout keeps the shared data: ``../shared/data`` of the repo and of the cwd."""
    return [REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]


def _install(src: Path, dest: Path) -> None:
    """Copy ``src`` onto ``dest`` atomically (temporary file + rename)."""
    tmp = dest.with_name(f".{dest.name}.part")
    try:
        shutil.copyfile(src, tmp)
        if _sha256(tmp) != FILES[dest.name]:
            raise RuntimeError(f"{src}: sha256 does not match the published lung2 file")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _from_pypi(missing: list[str], out: Path) -> None:
    """Download the pyradiomics 3.1.0 sdist with pip and extract only ``data/<name>`` files."""
    with tempfile.TemporaryDirectory(prefix="tls-pyradiomics-") as tmpdir:
        cmd = [sys.executable, "-m", "pip", "download", PYRADIOMICS_SDIST, "--no-deps", "--dest", tmpdir, "--quiet"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        archives = list(Path(tmpdir).glob("pyradiomics-*.tar.gz"))
        if proc.returncode != 0 or not archives:
            raise RuntimeError(f"pip download {PYRADIOMICS} failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
        with tarfile.open(archives[0], "r:gz") as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if name in missing and member.name.endswith(f"data/{name}") and member.isfile():
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    part = Path(tmpdir) / name
                    with open(part, "wb") as f:
                        shutil.copyfileobj(extracted, f)
                    _install(part, out / name)


def fetch(out: str | os.PathLike, allow_download: bool = True) -> list[Path]:
    """Make sure ``out`` holds the lung2 files; returns their paths.

    Raises:
        RuntimeError: neither a shared copy nor the download worked.
    """
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    missing = [n for n in FILES if not _ok(dest / n)]
    for name in list(missing):
        for folder in shared_data_dirs():
            if _ok(folder / name):
                _install(folder / name, dest / name)
                missing.remove(name)
                break
    if missing and allow_download:
        _from_pypi(missing, dest)
        missing = [n for n in FILES if not _ok(dest / n)]
    if missing:
        raise RuntimeError(f"could not obtain {', '.join(missing)} (no ../shared/data and no download)")
    return [dest / n for n in FILES]


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m TextLesionSegLib.sample_data --out DIR``."""
    parser = argparse.ArgumentParser(prog="python -m TextLesionSegLib.sample_data", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to put lung2_image.nrrd and lung2_label.nrrd in")
    parser.add_argument("--no-download", action="store_true", help="only copy from ../shared/data")
    args = parser.parse_args(argv)
    try:
        paths = fetch(args.out, allow_download=not args.no_download)
    except (RuntimeError, OSError) as exc:
        print(f"sample_data: error: {exc}", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
