"""The Slicer module without Slicer: its .ui (well-formed, every name the code uses exists, it
loads offscreen with PySide6 when CTK/MRML classes are mapped to stand-ins), the module file's
shape (scripted-module classes, lazy imports, translated strings, no pip-installed torch), the
dependency helpers, and the panel picture."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULE_FILE = ROOT / "TextLesionSeg" / "TextLesionSeg.py"
UI_FILE = ROOT / "TextLesionSeg" / "Resources" / "UI" / "TextLesionSeg.ui"
LIB = ROOT / "TextLesionSeg" / "TextLesionSegLib"
UI_PACKAGE = LIB / "ui"
HEAVY = {"torch", "monai", "transformers"}
#: what Slicer loads for the module: the module file and the panel package it imports
SLICER_FILES = [MODULE_FILE, *sorted(UI_PACKAGE.glob("*.py"))]


def _module_tree() -> ast.Module:
    return ast.parse(MODULE_FILE.read_text(encoding="utf-8"))


def _slicer_trees() -> list[ast.Module]:
    return [ast.parse(path.read_text(encoding="utf-8")) for path in SLICER_FILES]


def _class(name: str) -> ast.ClassDef:
    for tree in _slicer_trees():
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == name:
                return node
    raise AssertionError(f"no class {name} in the module file or the ui package")


def _ui_names() -> dict[str, str]:
    root = ET.parse(UI_FILE).getroot()
    return {w.get("name"): w.get("class") for w in root.iter("widget")}


def _used_ui_names() -> set[str]:
    text = "\n".join(path.read_text(encoding="utf-8") for path in SLICER_FILES)
    return set(re.findall(r"\bui\.(\w+)", text)) - {"widget", "logic", "parameters", "results", "install", "self_test"}


def _images_module():
    spec = importlib.util.spec_from_file_location("make_images", ROOT / "Resources" / "make_images.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ui_is_well_formed_and_has_every_widget_the_code_uses():
    names = _ui_names()
    used = _used_ui_names()
    assert len(used) > 20
    assert not used - set(names), f"used by the panel code but missing in the .ui: {sorted(used - set(names))}"
    root = ET.parse(UI_FILE).getroot()
    for connection in root.iter("connection"):
        assert connection.findtext("sender") in names and connection.findtext("receiver") in names
    custom = {c.findtext("class") for c in root.iter("customwidget")}
    assert {cls for cls in names.values() if not cls.startswith("Q")} <= custom


def test_parameter_names_in_the_ui_are_parameter_node_fields():
    node_class = _class("TextLesionSegParameterNode")
    fields = {s.target.id for s in node_class.body if isinstance(s, ast.AnnAssign)}
    root = ET.parse(UI_FILE).getroot()
    bound = {p.findtext("string") for p in root.iter("property") if p.get("name") == "SlicerParameterName"}
    assert bound and bound <= fields, bound - fields
    assert any(isinstance(d, ast.Name) and d.id == "parameterNodeWrapper" for d in node_class.decorator_list)


def test_ui_loads_offscreen_with_stand_in_classes():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    pytest.importorskip("PySide6.QtUiTools", reason="PySide6 is not installed")
    from PySide6.QtWidgets import QApplication, QWidget

    app = QApplication.instance() or QApplication([])
    images = _images_module()
    panel = images.load_placeholder_ui(UI_FILE)
    found = {w.objectName() for w in panel.findChildren(QWidget)}
    assert not _used_ui_names() - found, sorted(_used_ui_names() - found)
    assert panel.findChild(QWidget, "applyButton").text() == "Apply"
    panel.deleteLater()
    app.processEvents()


def test_scripted_module_shape_and_lazy_imports():
    tree = _module_tree()
    classes = {n.name: [ast.unparse(b) for b in n.bases] for n in tree.body if isinstance(n, ast.ClassDef)}
    assert classes["TextLesionSeg"] == ["ScriptedLoadableModule"]
    assert classes["TextLesionSegWidget"] == ["ScriptedLoadableModuleWidget"]
    assert [ast.unparse(b) for b in _class("TextLesionSegLogic").bases] == ["ScriptedLoadableModuleLogic"]
    assert [ast.unparse(b) for b in _class("TextLesionSegTest").bases] == ["ScriptedLoadableModuleTest"]
    # Slicer finds Logic and Test by name in the module file: they are imported there
    imported = {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
    assert {"TextLesionSegLogic", "TextLesionSegTest", "TextLesionSegParameterNode"} <= imported
    # a thin shell, as the best extensions' module files are
    assert len(MODULE_FILE.read_text(encoding="utf-8").splitlines()) <= 250
    assert all(len(p.read_text(encoding="utf-8").splitlines()) <= 400 for p in SLICER_FILES)
    files = [*SLICER_FILES, *LIB.rglob("__init__.py"), *(LIB / "mrml").glob("*.py")]
    for path in files:
        for node in ast.parse(path.read_text(encoding="utf-8")).body:  # file scope only
            if isinstance(node, ast.Import):
                modules = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                modules = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not modules & HEAVY, f"{path.relative_to(ROOT)} imports {modules & HEAVY} at file scope"


def test_slicers_process_never_imports_torch_and_the_self_test_never_installs():
    """Device status is the worker's answer; installing is the user's Apply, not the self-test's."""
    for tree, path in zip(_slicer_trees(), SLICER_FILES):
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = {a.name for a in node.names} | {getattr(node, "module", None) or ""}
                assert not {n.split(".")[0] for n in names} & HEAVY, f"{path.name} imports {names}"
                assert "torch_status" not in names and "compute_status" not in names, path.name
    text = (UI_PACKAGE / "self_test.py").read_text(encoding="utf-8")
    assert "ensureDependencies" not in text and "ensure_dependencies" not in text and "pip" not in text
    assert "missingDependencies" in text and "skipTest" in text
    for path in SLICER_FILES:
        assert "pydeps" not in path.read_text(encoding="utf-8"), f"{path.name}: slicer.pydeps is in no Slicer"


def test_user_facing_strings_are_translatable_and_torch_is_never_pip_installed():
    tree = ast.Module(body=[node for t in _slicer_trees() for node in t.body], type_ignores=[])
    ui_calls = {"showState", "showStatusMessage", "confirmOkCancelDisplay", "tryWithErrorDisplay", "errorDisplay"}
    checked = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ui_calls and node.args:
                # a literal text must go through _() (worker stage names arrive as data)
                first = node.args[0]
                assert not isinstance(first, (ast.Constant, ast.JoinedStr)), ast.unparse(node)
                if isinstance(first, ast.Call) and isinstance(first.func, ast.Attribute):
                    first = first.func.value  # _("...").format(...)
                if isinstance(first, ast.Call) and getattr(first.func, "id", "") == "_":
                    checked += 1
            if name in ("pip_install", "pip_ensure"):
                assert "torch" not in ast.unparse(node).replace('"torch", ', "").split("skip_packages")[0]
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            target = ast.unparse(node.targets[0])
            if target.endswith((".text", ".toolTip")) and node.value.value:
                pytest.fail(f"untranslated UI text: {ast.unparse(node)}")
    assert checked >= 10
    assert "PyTorchUtils" in (UI_PACKAGE / "install.py").read_text(encoding="utf-8")


def test_missing_requirements_protect_slicer_packages(tmp_path):
    from TextLesionSegLib.mrml.environment import missing_requirements, read_requirements
    from TextLesionSegLib.pipeline.devices import device_choices, torch_status

    requirements = read_requirements(ROOT / "python-requirements.txt")
    assert requirements and not any(r.lower().startswith(("torch", "numpy", "simpleitk", "vtk")) for r in requirements)
    assert missing_requirements(requirements) == []  # this venv has everything
    wanted = ["numpy>=999", "SimpleITK>=999", "torch>=999", "pytest>=999", "not-a-real-package-xyz>=1", "scipy>=1.0"]
    assert missing_requirements(wanted) == ["pytest>=999", "not-a-real-package-xyz>=1"]
    status = torch_status()
    assert status["installed"] and status["version"] and "PyTorch" in status["message"]
    assert device_choices(status)[0] == "auto" and device_choices(status)[-1] == "cpu"
    assert device_choices({"cuda": [{"index": 0}, {"index": 1}]}) == ["auto", "cuda:0", "cuda:1", "cpu"]


def test_dependencies_ask_once_and_install_torch_first(tmp_path):
    from TextLesionSegLib.mrml.environment import ensure_dependencies

    calls = []
    complete = tmp_path / "complete.txt"
    complete.write_text("# present\nscipy>=1.0\n", encoding="utf-8")
    assert ensure_dependencies(complete, lambda listed: calls.append(("ask", listed)) or True,
                               lambda: calls.append("torch"), lambda m: calls.append(("pip", m)))
    assert calls == []  # nothing missing: no question, no install
    lacking = tmp_path / "lacking.txt"
    lacking.write_text("scipy>=1.0\nnot-a-real-package-xyz>=1\nnumpy>=999\n", encoding="utf-8")
    assert not ensure_dependencies(lacking, lambda listed: calls.append(("ask", listed)) or False,
                                   lambda: calls.append("torch"), lambda m: calls.append(("pip", m)))
    assert calls == [("ask", ["not-a-real-package-xyz>=1"])]  # declined: nothing installed
    calls.clear()
    assert ensure_dependencies(lacking, lambda listed: calls.append(("ask", listed)) or True,
                               lambda: calls.append("torch"), lambda m: calls.append(("pip", m)))
    assert calls == [("ask", ["not-a-real-package-xyz>=1"]), ("pip", ["not-a-real-package-xyz>=1"])]


def test_live_preview_shows_understood_facts_and_unknown_words():
    from TextLesionSegLib.mrml.preview import preview_html

    html = preview_html("hypodense round mass in the right lobe of the liver\nsmall nodule in the lefft lung")
    first, second = html.split("<br>")[:2]
    assert "organ: liver" in first and "density: hypodense" in first and "shape: round-like" in first
    assert "organ: lung" in second and "?lefft" in second and "color:#c00" in second
    assert preview_html("   ") == ""
    assert "&lt;b&gt;" in preview_html("<b>mass</b> in the liver")  # user text is escaped


def test_panel_picture_and_icons_exist_and_match_the_ui(tmp_path):
    from PIL import Image

    with Image.open(ROOT / "Resources" / "TextLesionSeg.png") as icon:
        assert icon.size == (128, 128)
    with Image.open(ROOT / "TextLesionSeg" / "Resources" / "Icons" / "TextLesionSeg.png") as icon:
        assert icon.size == (128, 128)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    pytest.importorskip("PySide6.QtUiTools")
    drawn = _images_module().draw_panel(tmp_path / "panel.png")
    with Image.open(drawn) as fresh, Image.open(ROOT / "Resources" / "Screenshots" / "panel.png") as committed:
        assert fresh.size == committed.size  # the committed picture is the current .ui's layout
        assert fresh.size[0] > 300 and fresh.size[1] > 600


def test_what_the_panel_does_before_install_needs_no_torch():
    """Opening the panel, typing (live preview), listing models and choosing a server engine must
    work before torch exists, and never load the server's web stack (FastAPI, uvicorn)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import TextLesionSegLib.mrml.volumes, TextLesionSegLib.mrml.segmentation, TextLesionSegLib.mrml.session\n"
        "import TextLesionSegLib.mrml.correction, TextLesionSegLib.mrml.environment, TextLesionSegLib.worker.client\n"
        "import TextLesionSegLib.mrml.run_controller, TextLesionSegLib.worker.engines, TextLesionSegLib.worker.remote\n"
        "from TextLesionSegLib.mrml.preview import preview_html\n"
        "from TextLesionSegLib.models.registry import list_models\n"
        "assert 'liver' in preview_html('hypodense mass in the liver')\n"
        "list_models()\n"
        "heavy = sorted(m for m in ('torch', 'monai', 'transformers', 'fastapi', 'uvicorn') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_supported_slicer_versions_are_stated_alike_and_tested():
    """One claim (``TextLesionSegLib.MINIMUM_SLICER``), written where users look, and the
    Python that Slicer ships is the one the 3.9 test runs."""
    import TextLesionSegLib

    major, minor = TextLesionSegLib.MINIMUM_SLICER
    claim = f"Slicer {major}.{minor} or later"
    for path in (ROOT / "README.md", ROOT / "docs" / "slicer.md", ROOT / "CMakeLists.txt"):
        assert claim in " ".join(path.read_text(encoding="utf-8").split()), f"{path.name} does not say '{claim}'"
    assert TextLesionSegLib.MINIMUM_PYTHON == (3, 9)  # what Slicer 5.8 ships
    compat = (ROOT / "Testing" / "Python" / "test_python39_compat.py").read_text(encoding="utf-8")
    assert "sys.version_info[:2] == (3, 9)" in compat
    assert "MINIMUM_SLICER" in MODULE_FILE.read_text(encoding="utf-8")  # an older Slicer is told so
