"""TextLesionSeg engine: free-text lesion descriptions + CT volume -> editable 3D lesion segments.

The engine imports neither Qt nor Slicer (except the ``mrml`` subpackage, which needs Slicer's
MRML classes from Slicer itself or from ``slicer-core``). Heavy packages (torch, monai,
transformers) are imported lazily inside the functions that need them, so Slicer can load the
module before its Python dependencies are installed.
"""

__version__ = "0.1.0"

#: The oldest 3D Slicer release the extension supports and the Python it ships (Slicer 5.8:
#: Python 3.9; 5.10 and later: 3.12). The Slicer-side code and the worker's engine are checked
#: under that Python by ``Testing/Python/test_python39_compat.py``.
MINIMUM_SLICER = (5, 8)
MINIMUM_PYTHON = (3, 9)
