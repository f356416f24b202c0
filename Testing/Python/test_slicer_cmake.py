"""The extension's CMake files, built for real by ``cmake`` against a stand-in Slicer package.

The stand-in defines only what the files call (``find_package(Slicer)`` variables,
``slicerMacroBuildScriptedModule``, ``slicer_add_python_unittest``, the extension config and
CPack includes). It fails like Slicer's build would when a listed file is missing, and it also
fails when extension metadata is empty; it records what was listed so the lists can be compared
with the files on disk. Also: ``cmake-lint`` (cmakelang) and the Extensions Index JSON.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
import update_cmake_sources  # noqa: E402

CMAKE = shutil.which("cmake")
# project() without LANGUAGES (as in Slicer's template) looks for C and C++ compilers
COMPILER = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
needs_cmake = pytest.mark.skipif(CMAKE is None or COMPILER is None, reason="cmake or a C compiler is not installed")
METADATA = ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
            "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS", "EXTENSION_DEPENDS")

USE_SLICER = r"""
# Stand-in for Slicer's UseSlicer.cmake: only the macros TextLesionSeg calls.
function(_standin_record list_name)
  file(APPEND ${CMAKE_BINARY_DIR}/standin-${list_name}.txt "${ARGN}\n")
endfunction()

macro(slicerMacroBuildScriptedModule)
  cmake_parse_arguments(MY "WITH_GENERIC_TESTS;WITH_SUBDIR;VERBOSE" "NAME" "SCRIPTS;RESOURCES" ${ARGN})
  if(NOT MY_NAME)
    message(FATAL_ERROR "slicerMacroBuildScriptedModule: NAME is empty")
  endif()
  if(NOT MY_SCRIPTS)
    message(FATAL_ERROR "slicerMacroBuildScriptedModule: SCRIPTS is empty")
  endif()
  foreach(_file IN LISTS MY_SCRIPTS MY_RESOURCES)
    if(NOT EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${_file})
      message(FATAL_ERROR "slicerMacroBuildScriptedModule: listed file is missing: ${_file}")
    endif()
  endforeach()
  foreach(_file IN LISTS MY_SCRIPTS)
    _standin_record(scripts ${_file})
  endforeach()
  foreach(_file IN LISTS MY_RESOURCES)
    _standin_record(resources ${_file})
  endforeach()
  if(MY_WITH_GENERIC_TESTS)
    _standin_record(flags WITH_GENERIC_TESTS)
  endif()
endmacro()

function(slicer_add_python_unittest)
  cmake_parse_arguments(MY "" "SCRIPT;SLICER_ARGS" "" ${ARGN})
  if(NOT EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${MY_SCRIPT})
    message(FATAL_ERROR "slicer_add_python_unittest: missing script ${MY_SCRIPT}")
  endif()
  _standin_record(unittests ${MY_SCRIPT})
endfunction()
"""

GENERATE_CONFIG = r"""
# Stand-in for Slicer's extension config generation: metadata must be complete.
foreach(_var IN ITEMS @METADATA@)
  if("${${_var}}" STREQUAL "")
    message(FATAL_ERROR "extension metadata ${_var} is empty")
  endif()
  file(APPEND ${CMAKE_BINARY_DIR}/standin-metadata.txt "${_var}=${${_var}}\n")
endforeach()
if(NOT PROJECT_NAME STREQUAL "TextLesionSeg")
  message(FATAL_ERROR "project() must be the extension name")
endif()
"""

SLICER_CONFIG = r"""
set(Slicer_FOUND TRUE)
set(Slicer_USE_FILE ${CMAKE_CURRENT_LIST_DIR}/UseSlicer.cmake)
set(Slicer_EXTENSION_GENERATE_CONFIG ${CMAKE_CURRENT_LIST_DIR}/GenerateConfig.cmake)
set(Slicer_EXTENSION_CPACK ${CMAKE_CURRENT_LIST_DIR}/CPack.cmake)
set(Slicer_QTSCRIPTEDMODULES_LIB_DIR lib/Slicer-5.10/qt-scripted-modules)
set(Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR ${Slicer_QTSCRIPTEDMODULES_LIB_DIR})
"""


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("slicer-standin")
    (folder / "SlicerConfig.cmake").write_text(SLICER_CONFIG, encoding="utf-8")
    (folder / "UseSlicer.cmake").write_text(USE_SLICER, encoding="utf-8")
    (folder / "GenerateConfig.cmake").write_text(GENERATE_CONFIG.replace("@METADATA@", " ".join(METADATA)), encoding="utf-8")
    (folder / "CPack.cmake").write_text('set(CPACK_PACKAGE_NAME "${PROJECT_NAME}")\n', encoding="utf-8")
    return folder


def configure(source: Path, build: Path, standin: Path) -> subprocess.CompletedProcess:
    # No compiler is needed by a scripted extension; NONE keeps the stand-in build fast.
    return subprocess.run(
        [CMAKE, "-S", str(source), "-B", str(build), f"-DSlicer_DIR={standin}", "-DBUILD_TESTING=ON",
         "-DCMAKE_C_COMPILER_WORKS=1", "-DCMAKE_CXX_COMPILER_WORKS=1"],
        capture_output=True, text=True, timeout=180,
    )


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def configured(tmp_path_factory, standin) -> Path:
    if CMAKE is None or COMPILER is None:
        pytest.skip("cmake or a C compiler is not installed")
    build = tmp_path_factory.mktemp("build")
    done = configure(ROOT, build, standin)
    assert done.returncode == 0, done.stderr[-3000:]
    return build


@needs_cmake
def test_cmake_configures_and_lists_every_file_on_disk(configured):
    scripts, resources = update_cmake_sources.expected_sources(ROOT)
    assert _lines(configured / "standin-scripts.txt") == scripts, (
        "TextLesionSeg/CMakeLists.txt is stale: run python Testing/Python/update_cmake_sources.py")
    assert _lines(configured / "standin-resources.txt") == resources
    assert "TextLesionSegLib/mrml/segmentation.py" in scripts and "Resources/UI/TextLesionSeg.ui" in resources
    assert _lines(configured / "standin-flags.txt") == ["WITH_GENERIC_TESTS"]
    assert _lines(configured / "standin-unittests.txt") == ["TextLesionSeg.py"]
    requirements = configured / "lib/Slicer-5.10/qt-scripted-modules/Resources/python-requirements.txt"
    assert requirements.read_text(encoding="utf-8") == (ROOT / "python-requirements.txt").read_text(encoding="utf-8")


@needs_cmake
def test_json_matches_the_cmake_metadata(configured):
    metadata = dict(line.split("=", 1) for line in _lines(configured / "standin-metadata.txt"))
    entry = json.loads((ROOT / "TextLesionSeg.json").read_text(encoding="utf-8"))
    assert entry["$schema"].startswith("https://raw.githubusercontent.com/Slicer/Slicer/")
    # the catalog schema (v1.0.1) allows no other keys
    assert set(entry) <= {"$schema", "category", "scm_url", "scm_revision", "scm_type", "build_dependencies",
                          "build_subdirectory", "enabled", "tier"}
    assert entry["category"] == metadata["EXTENSION_CATEGORY"] == "Segmentation"
    assert entry["build_dependencies"] == metadata["EXTENSION_DEPENDS"].split() == ["PyTorch"]
    assert entry["scm_url"] == metadata["EXTENSION_HOMEPAGE"]
    assert entry["scm_revision"] and entry["tier"] in range(1, 6)
    # Catalog rules: repository named Slicer*, extension name not.
    assert entry["scm_url"].rstrip("/").split("/")[-1].startswith("Slicer")
    # Icon and screenshots are raw URLs of files in this repository, real PNGs.
    from PIL import Image

    for url in [metadata["EXTENSION_ICONURL"], *metadata["EXTENSION_SCREENSHOTURLS"].split()]:
        relative = re.sub(r"^https://raw\.githubusercontent\.com/[^/]+/[^/]+/[^/]+/", "", url)
        with Image.open(ROOT / relative) as picture:
            assert picture.format == "PNG"
            if url == metadata["EXTENSION_ICONURL"]:
                assert picture.size == (128, 128)


def _minimal_tree(tmp_path: Path) -> Path:
    """A copy of the CMake files with empty stand-ins of every listed file."""
    source = tmp_path / "src"
    (source / "TextLesionSeg").mkdir(parents=True)
    shutil.copy(ROOT / "CMakeLists.txt", source)
    shutil.copy(ROOT / "python-requirements.txt", source)
    shutil.copy(ROOT / "TextLesionSeg" / "CMakeLists.txt", source / "TextLesionSeg")
    for relative in sum(update_cmake_sources.expected_sources(ROOT), []):
        path = source / "TextLesionSeg" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    return source


@needs_cmake
def test_a_missing_listed_file_or_empty_metadata_fails_the_build(tmp_path, standin):
    source = _minimal_tree(tmp_path)
    (source / "TextLesionSeg" / "TextLesionSegLib" / "mrml" / "correction.py").unlink()
    failed = configure(source, tmp_path / "b1", standin)
    # cmake wraps long messages: compare with whitespace collapsed
    assert failed.returncode != 0
    assert "listed file is missing: TextLesionSegLib/mrml/correction.py" in " ".join(failed.stderr.split())
    source = _minimal_tree(tmp_path / "second")
    top = source / "CMakeLists.txt"
    top.write_text(re.sub(r'set\(EXTENSION_CONTRIBUTORS "[^"]*"\)', 'set(EXTENSION_CONTRIBUTORS "")', top.read_text(encoding="utf-8")))
    failed = configure(source, tmp_path / "b2", standin)
    assert failed.returncode != 0 and "EXTENSION_CONTRIBUTORS is empty" in " ".join(failed.stderr.split())


def test_generated_lists_are_up_to_date_and_the_script_detects_drift(tmp_path, monkeypatch):
    text = update_cmake_sources.CMAKE_FILE.read_text(encoding="utf-8")
    assert update_cmake_sources.updated_text(text) == text, "run python Testing/Python/update_cmake_sources.py"
    stale = text.replace("    TextLesionSegLib/mrml/table.py\n", "")
    assert update_cmake_sources.updated_text(stale) == text
    # developer tools stay in the pip package: the extension ships what the module runs
    for tool in ("worker/soak.py", "worker/testing.py", "mrml/benchmark.py"):
        assert f"TextLesionSegLib/{tool}" not in text


def test_cmake_lint_passes():
    lint = shutil.which("cmake-lint") or str(Path(sys.executable).with_name("cmake-lint"))
    if not Path(lint).exists():
        pytest.skip("cmakelang is not installed")
    done = subprocess.run([lint, str(ROOT / "CMakeLists.txt"), str(ROOT / "TextLesionSeg" / "CMakeLists.txt")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_top_level_template_shape():
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    order = ["cmake_minimum_required(", "project(TextLesionSeg)", "find_package(Slicer REQUIRED)",
             "include(${Slicer_USE_FILE})", "add_subdirectory(TextLesionSeg)",
             "include(${Slicer_EXTENSION_GENERATE_CONFIG})", "include(${Slicer_EXTENSION_CPACK})"]
    positions = [text.index(token) for token in order]
    assert positions == sorted(positions)


PACKAGED_RUN = r"""
import importlib, pathlib, sys
import numpy as np, SimpleITK as sitk
import TextLesionSegLib
root = pathlib.Path(sys.argv[1])
assert pathlib.Path(TextLesionSegLib.__file__).is_relative_to(root), TextLesionSegLib.__file__
# every packaged module imports (ui/ needs Slicer's Qt: not here)
for path in sorted((root / "TextLesionSegLib").rglob("*.py")):
    parts = list(path.relative_to(root).with_suffix("").parts)
    if "ui" in parts or parts[-1] == "__main__":  # __main__ would start the worker
        continue
    importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
# and the worker runs each bundled demo model on a small CT from the packaged files alone
from TextLesionSegLib.models.registry import default_registry, list_models, weights_status
from TextLesionSegLib.worker.server import run_request_sync
k, j, i = np.mgrid[:40, :48, :48]
ct = np.full((40, 48, 48), -1000, np.int16)
ct[3:-3, 4:-4, 4:-4] = 30
ct[(k - 20) ** 2 + (j - 24) ** 2 + (i - 30) ** 2 <= 30] = 160
image = sitk.GetImageFromArray(ct)
image.SetSpacing((1.5, 1.5, 2.0))
sitk.WriteImage(image, str(root.parent / "ct.nrrd"))
bundled = [m.name for m in list_models() if weights_status(m.name).state == "bundled"]
assert bundled
registry = default_registry()
for name in bundled:
    request = {"type": "segment", "image_path": str(root.parent / "ct.nrrd"), "model": name,
               "texts": ["round hyperdense lesion in the liver"], "settings": {"device": "cpu"},
               "output_dir": str(root.parent / name)}
    if "text" not in registry.segmenter_class(registry.get_entry(name).architecture).capabilities:
        # a click model: one click on the sphere (voxel k20 j24 i30 -> LPS (45, 36, 40) -> RAS)
        request = {**request, "type": "refine", "texts": [], "include_points": [[-45.0, -36.0, 40.0]]}
    message = run_request_sync(request)
    assert message["type"] == "result", message
    print(name, "ok")
"""


def test_the_packaged_files_alone_import_and_run_every_bundled_model(tmp_path):
    """What the extension installs (the generated lists) is enough at run time: copied alone
    into a folder, every module imports and the worker segments with each bundled model."""
    scripts, resources = update_cmake_sources.expected_sources(ROOT)
    assert not any(s.startswith(("TextLesionSegLib/cli/", "TextLesionSegLib/training/trainer")) for s in scripts)
    assert "TextLesionSegLib/ui/widget.py" in scripts and "TextLesionSegLib/worker/server.py" in scripts
    packaged = tmp_path / "qt-scripted-modules"
    for relative in scripts + resources:
        target = packaged / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / "TextLesionSeg" / relative, target)
    env = {**__import__("os").environ, "PYTHONPATH": str(packaged), "HF_HUB_OFFLINE": "1",
           "TEXTLESIONSEG_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", PACKAGED_RUN, str(packaged)], capture_output=True, text=True,
                          encoding="utf-8", errors="replace",
                          timeout=600, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(" ok") >= 2, done.stdout
