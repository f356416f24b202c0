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
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

#: the files and their sha256 (as published in pyradiomics 3.1.0's source archive)
FILES: dict[str, str] = {
    "lung2_image.nrrd": "aa2b94eec79127ed786798ac8dc3c013010e1692d5787bebfae1a1e9685a4651",
    "lung2_label.nrrd": "cef52738dc51aab69a48fe30639da956d2b911b1c2920439c091fab84727657a",
}
PYRADIOMICS = "pyradiomics==3.1.0"
#: sha256 of the pyradiomics 3.1.0 sdist, checked after download.
PYRADIOMICS_SDIST_SHA256 = "24722c962a6bbd09bc39c1c67dbffe92435f9692a421fabaae8a6b4511eb48e4"
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


def _sdist_location() -> str:
    """Where the package index serves the pyradiomics 3.1.0 sdist, as pip itself resolves it by name.

    ``pip download pyradiomics==3.1.0`` aborts: the archive's metadata says 3.0.1a1, and even
    ``--use-deprecated=legacy-resolver`` then fails an assertion in pip >= 24. A dry-run install
    with the legacy resolver does resolve it, and its JSON report names the archive's location.
    """
    with tempfile.TemporaryDirectory(prefix="tls-pip-report-") as tmpdir:
        report = Path(tmpdir) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed",
               "--use-deprecated=legacy-resolver", "--no-binary", "pyradiomics", "--quiet",
               "--report", str(report), PYRADIOMICS]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not report.exists():
            raise RuntimeError(f"pip could not resolve {PYRADIOMICS}: {(proc.stderr or proc.stdout).strip()[-300:]}")
        for item in json.loads(report.read_text(encoding="utf-8")).get("install", []):
            url = item.get("download_info", {}).get("url", "")
            if url.endswith(".tar.gz"):
                return url
    raise RuntimeError(f"pip resolved no source archive for {PYRADIOMICS}")


def _from_pypi(missing: list[str], out: Path) -> None:
    """Download the pyradiomics 3.1.0 sdist (sha256-checked) and extract only ``data/<name>`` files."""
    with tempfile.TemporaryDirectory(prefix="tls-pyradiomics-") as tmpdir:
        archive = Path(tmpdir) / "pyradiomics-3.1.0.tar.gz"
        with urllib.request.urlopen(_sdist_location(), timeout=120) as response, open(archive, "wb") as f:
            shutil.copyfileobj(response, f)
        if _sha256(archive) != PYRADIOMICS_SDIST_SHA256:
            raise RuntimeError(f"{PYRADIOMICS} source archive does not match its published sha256")
        with tarfile.open(archive, "r:gz") as tar:
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
