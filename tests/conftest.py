import os
from pathlib import Path

import pytest
import torch

# Test graphs are small: one intra-op thread is faster than two and keeps runs steady on a
# shared 2-core machine.
torch.set_num_threads(int(os.environ.get("GRAPHKIT_TEST_THREADS", "1")))

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if not os.environ.get("GRAPHKIT_DATA") and _SHARED.is_dir():
    os.environ["GRAPHKIT_DATA"] = str(_SHARED)


@pytest.fixture(scope="session")
def data_root() -> str:
    root = os.environ.get("GRAPHKIT_DATA")
    if not root:
        raise RuntimeError("set GRAPHKIT_DATA to the folder holding the shared datasets")
    return root
