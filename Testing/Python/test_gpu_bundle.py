"""``textlesionseg bundle`` + ``python BUNDLE/run.py --dry-run``: a CPU dry run of a bundle built
from a synthetic folder writes weights that ``textlesionseg segment --model OUT/weights`` loads,
without SimpleITK, slicerio or transformers (a torch-only GPU image has none of them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from TextLesionSegLib.cli import main

#: makes the listed packages unimportable in the dry run's interpreter, as on a torch-only image
BLOCKER = '''import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("SimpleITK", "slicerio", "transformers"):
            raise ImportError(name + " is not on a torch-only GPU image")
sys.meta_path.insert(0, _Block())
'''


@pytest.fixture(scope="module")
def synth_folder(tmp_path_factory) -> Path:
    """Two small synthetic cases (``textlesionseg synth``)."""
    out = tmp_path_factory.mktemp("synth") / "data"
    assert main(["synth", "--out", str(out), "--count", "2", "--hosts", "chest", "--grid", "small", "--seed", "4",
                 "--no-progress"]) == 0
    return out


@pytest.mark.slow
def test_bundle_dry_run_writes_weights_segment_loads(synth_folder: Path, tmp_path: Path, capsys) -> None:
    bundle, out = tmp_path / "bundle", tmp_path / "out"
    assert main(["bundle", "--model", "lsms-demo", "--data", str(synth_folder), "--out", str(bundle), "--no-wheels"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["mib"] <= 60 and summary["arch"] == "lsms"
    meta = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))
    assert set(meta["throughput_configs"]) == {"full", "demo"} and (bundle / "code" / "TextLesionSegLib").is_dir()
    assert not (bundle / "code" / "TextLesionSegLib" / "models" / "weights").exists()  # no shipped weights inside
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(tmp_path / "site"),
                                                                       "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(bundle / "run.py"), "--out", str(out), "--dry-run"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((out / "throughput.json").read_text(encoding="utf-8"))
    assert results["device"] == "cpu" and results["full"]["samples_per_s"] > 0 and results["demo"]["samples_per_s"] > 0
    assert results["full"]["parameters"] > results["demo"]["parameters"]
    assert results["finetune"]["steps"] == 2 and results["demo"]["random_text_features"] == 0
    assert (out / "log.csv").is_file()
    # the fine-tuned weights load as any weights folder does
    image = next((synth_folder / "imagesTr").glob("*.nii.gz"))
    seg = tmp_path / "seg.seg.nrrd"
    code = main(["segment", str(image), "--text", "a lesion in the right lung", "--model", str(out / "weights"),
                 "--output", str(seg), "--report", str(tmp_path / "r.json"), "--quiet"])
    assert code == 0 and seg.is_file()
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["model"]["name"] == "out-weights"


def test_bundle_over_its_size_limit_is_refused_and_removed(synth_folder: Path, tmp_path: Path, capsys) -> None:
    bundle = tmp_path / "bundle"
    code = main(["bundle", "--model", "lsms-demo", "--data", str(synth_folder), "--out", str(bundle), "--no-wheels",
                 "--max-mib", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "over --max-mib 1" in err and "--max-cases" in err
    assert not bundle.exists()
    assert main(["bundle", "--model", "clipseg-demo", "--data", str(synth_folder), "--out", str(bundle),
                 "--no-wheels"]) == 2  # only Malenia and LSMS train from a cache
    assert "bundles train" in capsys.readouterr().err and not bundle.exists()
