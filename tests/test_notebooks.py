"""Static checks of the notebooks (the suite executes them with nbmake)."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_plots_render_inline(path):
    # matplotlib.use("Agg") in a kernel replaces the inline backend: the quick-start tutorial
    # drew its only figure into nothing
    code = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                   if c["cell_type"] == "code")
    assert "matplotlib.use(" not in code
