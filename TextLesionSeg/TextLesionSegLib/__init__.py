"""TextLesionSeg engine: free-text lesion descriptions + CT volume -> editable 3D lesion segments.

The engine imports neither Qt nor Slicer (except the ``mrml`` subpackage, which needs Slicer's
MRML classes from Slicer itself or from ``slicer-core``). Heavy packages (torch, monai,
transformers) are imported lazily inside the functions that need them, so Slicer can load the
module before its Python dependencies are installed.
"""

__version__ = "0.1.0"
