"""Running ``pytest notebooks --nbmake`` on its own: the notebooks' kernels inherit this
process's environment, so give them the shared data folder as ``tests/conftest.py`` does."""

import os
from pathlib import Path

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if not os.environ.get("GRAPHKIT_DATA") and _SHARED.is_dir():
    os.environ["GRAPHKIT_DATA"] = str(_SHARED)
