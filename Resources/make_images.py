"""Draw the extension's pictures: the 128x128 icon and a picture of the module panel.

The panel picture is drawn from ``TextLesionSeg/Resources/UI/TextLesionSeg.ui`` with PySide6,
offscreen, after mapping Slicer's CTK/MRML widget classes to plain Qt stand-ins (a collapsible
button becomes a group box, a node selector a combo box...). It is *not* a capture of a running
Slicer: it shows the panel's layout and texts, filled with example values.

Usage (repository root)::

    QT_QPA_PLATFORM=offscreen python Resources/make_images.py
"""

from __future__ import annotations

import os
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UI_FILE = ROOT / "TextLesionSeg" / "Resources" / "UI" / "TextLesionSeg.ui"
ICON_FILES = (ROOT / "Resources" / "TextLesionSeg.png", ROOT / "TextLesionSeg" / "Resources" / "Icons" / "TextLesionSeg.png")
SCREENSHOT = ROOT / "Resources" / "Screenshots" / "panel.png"

#: Slicer widget class -> plain Qt class used for this offscreen picture and the .ui test only.
PLACEHOLDERS = {
    "qMRMLWidget": "QWidget",
    "ctkCollapsibleButton": "QGroupBox",
    "ctkSliderWidget": "QDoubleSpinBox",
    "ctkMenuButton": "QPushButton",
    "qMRMLNodeComboBox": "QComboBox",
    "qMRMLSegmentationShow3DButton": "QPushButton",
    "qMRMLSegmentEditorWidget": "QFrame",
}
#: properties of the Slicer classes the stand-ins do not have (dropped) or name differently.
_DROP = {"collapsed", "nodeTypes", "showChildNodeTypes", "noneEnabled", "addEnabled", "removeEnabled",
         "renameEnabled", "noneDisplay", "segmentationNodeSelectorVisible", "sourceVolumeNodeSelectorVisible"}


def placeholder_ui(ui_text: str) -> str:
    """The .ui text with CTK/MRML classes replaced by Qt stand-ins (for offscreen checks only)."""
    tree = ET.ElementTree(ET.fromstring(ui_text))
    root = tree.getroot()
    for element in root.iter("widget"):
        original = element.get("class")
        if original in PLACEHOLDERS:
            element.set("class", PLACEHOLDERS[original])
        for prop in list(element.findall("property")):
            name = prop.get("name")
            if name in _DROP:
                element.remove(prop)
            elif original == "ctkCollapsibleButton" and name == "text":
                prop.set("name", "title")
        if original == "qMRMLSegmentationShow3DButton":
            text = ET.SubElement(element, "property", name="text")
            ET.SubElement(text, "string").text = "Show 3D"
        if original == "qMRMLSegmentEditorWidget":
            element.set("class", "QLabel")
            text = ET.SubElement(element, "property", name="text")
            ET.SubElement(text, "string").text = "[Segment Editor: Slicer's qMRMLSegmentEditorWidget]"
    for tag in ("customwidgets", "connections"):
        for node in root.findall(tag):
            root.remove(node)
    return ET.tostring(root, encoding="unicode")


def load_placeholder_ui(ui_file: Path = UI_FILE):
    """A QWidget built from the .ui with stand-in classes (needs a QApplication)."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    from PySide6.QtUiTools import QUiLoader

    data = QByteArray(placeholder_ui(ui_file.read_text(encoding="utf-8")).encode("utf-8"))
    buffer = QBuffer(data)
    buffer.open(QIODevice.ReadOnly)
    widget = QUiLoader().load(buffer)
    if widget is None:
        raise RuntimeError(f"QUiLoader could not build {ui_file}")
    return widget


def draw_icon(paths=ICON_FILES) -> None:
    """128x128 icon: a CT-like slice, a highlighted lesion and a text cursor line."""
    from PIL import Image, ImageDraw

    size = 128
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((4, 4, 123, 123), radius=18, fill=(28, 33, 43, 255))
    draw.ellipse((18, 22, 110, 106), fill=(92, 92, 96, 255))  # body
    draw.ellipse((30, 36, 62, 84), fill=(40, 40, 44, 255))  # lungs
    draw.ellipse((66, 36, 98, 84), fill=(40, 40, 44, 255))
    draw.ellipse((71, 48, 89, 66), fill=(235, 90, 60, 255), outline=(255, 220, 120, 255), width=3)  # lesion
    draw.rounded_rectangle((14, 96, 114, 118), radius=6, fill=(245, 245, 240, 255))  # text box
    draw.line((24, 107, 70, 107), fill=(60, 60, 70, 255), width=3)
    draw.line((76, 101, 76, 113), fill=(235, 90, 60, 255), width=2)  # cursor
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)


def _model_line() -> tuple[str, str]:
    """The registry's default model and the line the panel shows for it (as the module builds it)."""
    try:
        from TextLesionSegLib.models.registry import default_model_name, get_entry, weights_status

        name = default_model_name()
        entry = get_entry(name)
        return name, f"{entry.description} (licence {entry.license}; weights {weights_status(name).state})"
    except Exception:  # no engine or no model: an empty selector, as the panel would show
        return "", "No model is registered yet (see 'textlesionseg models')."


def draw_panel(path: Path = SCREENSHOT) -> Path:
    """Render the panel from the .ui offscreen, with example inputs filled in."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication, QComboBox, QLabel, QPlainTextEdit, QProgressBar, QTableWidget

    app = QApplication.instance() or QApplication(sys.argv[:1])
    panel = load_placeholder_ui()
    find = lambda cls, name: panel.findChild(cls, name)  # noqa: E731
    find(QComboBox, "inputVolumeSelector").addItem("CT chest (lung2)")
    find(QComboBox, "outputSegmentationSelector").addItem("Create new segmentation")
    find(QComboBox, "roiSelector").addItem("Whole volume")
    model, summary = _model_line()
    find(QComboBox, "modelSelector").addItem(model)
    find(QComboBox, "deviceSelector").addItems(["auto", "cpu"])
    find(QComboBox, "engineSelector").addItems(["local", "server"])
    text = "irregular mass in the left upper lobe of the lung\nsmall round nodule in the right lung"
    find(QPlainTextEdit, "descriptionsTextEdit").setPlainText(text)
    try:  # the real parser's preview, as the panel shows it
        from TextLesionSegLib.mrml.preview import preview_html

        find(QLabel, "queryPreviewLabel").setText(preview_html(text))
    except ImportError:
        pass
    find(QLabel, "modelDescriptionLabel").setText(summary)
    progress = find(QProgressBar, "progressBar")
    progress.setVisible(True)
    progress.setValue(60)
    find(QLabel, "statusLabel").setText("Segmenting 2/2")
    table = find(QTableWidget, "lesionTableWidget")
    # Headers only: no invented measurements in a picture readers may take for a result.
    headers = ["Description", "Segment", "Lesion", "Volume (mL)", "Longest axial (mm)", "Perpendicular (mm)"]
    table.setColumnCount(len(headers))
    table.setHorizontalHeaderLabels(headers)
    panel.resize(440, 980)
    panel.show()
    app.processEvents()
    path.parent.mkdir(parents=True, exist_ok=True)
    panel.grab().save(str(path))
    return path


if __name__ == "__main__":
    draw_icon()
    print(draw_panel())
    print(re.sub(r"\s+", " ", "icon: " + ", ".join(str(p.relative_to(ROOT)) for p in ICON_FILES)))
