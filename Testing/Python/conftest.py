"""Shared pytest set-up: offline model hubs, a private matplotlib cache, and the data folders."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Nothing may be fetched from a model hub in tests; set before transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="mpl-"))

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (lung2, brain1); tests using it skip, saying why, when it is absent."""
    if not (SHARED_DATA / "lung2_image.nrrd").exists():
        pytest.skip(f"{SHARED_DATA} is absent (a user's clone has no ../shared); real-data test skipped")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ctchest_path() -> Path:
    """slicerio's bundled real chest CT (128x128x34, 3.05x3.05x10 mm)."""
    import slicerio

    path = Path(slicerio.__file__).parent / "data" / "CTChest4.nrrd"
    assert path.exists(), f"slicerio no longer bundles {path}"
    return path
