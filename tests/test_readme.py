"""The README's Python blocks are what users copy: they must import and run as written."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[tuple[str, str]]:
    """``(section heading, code)`` of every fenced ```python block."""
    blocks, section = [], "top"
    for part in re.split(r"(^#{2,3} .*$)", README.read_text(), flags=re.M):
        if part.startswith("#"):
            section = part.lstrip("# ").split(":")[0]
            continue
        blocks += [(section, code) for code in re.findall(r"```python\n(.*?)```", part, re.S)]
    return blocks


BLOCKS = _blocks()
IDS = [f"{i}-{name.split()[0]}" for i, (name, _) in enumerate(BLOCKS)]


def test_every_method_section_has_a_python_block():
    sections = {name.split()[0] for name, _ in BLOCKS}
    for method in ["Foundation", "DAGNN", "ForwardGNN", "STABLE", "LightHGNN", "NAT", "PRES",
                   "FastRP", "GRADCO", "LPGNAS"]:
        assert method in sections, f"README section {method} has no ```python block"


@pytest.mark.parametrize("code", [c for _, c in BLOCKS], ids=IDS)
def test_block_compiles_and_its_imports_resolve(code):
    tree = ast.parse(code)
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    exec(compile(ast.Module(imports, type_ignores=[]), "README.md", "exec"), {})


@pytest.mark.slow
@pytest.mark.parametrize("code", [c for _, c in BLOCKS], ids=IDS)
def test_block_runs_as_written(code, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
