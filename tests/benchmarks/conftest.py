"""Shared fixtures for the tests of the scripts in ``benchmarks/``."""

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _import_script(name: str) -> ModuleType:
    # benchmarks/ is not a package; a script may import a sibling script (hypergraph_speed
    # takes its PyG peer from hypergraph.py), so the folder is on the path while it loads
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


@pytest.fixture(scope="session")
def import_script() -> Callable[[str], ModuleType]:
    """``import_script("lpgnas")``: the module of ``benchmarks/lpgnas.py``."""
    return _import_script
