"""Shared fixtures for the tests of the scripts in ``benchmarks/``."""

import contextlib
import importlib.util
import inspect
import io
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


@pytest.fixture
def usage_error(import_script, monkeypatch) -> Callable[..., str]:
    """``usage_error("fastrp", ["--dataset", "cora"])``: run the script with those flags, check
    that argparse rejects them (exit code 2) and return what it printed on stderr."""

    def run(name: str, argv: list[str]) -> str:
        main = import_script(name).main
        takes_argv = bool(inspect.signature(main).parameters)
        if not takes_argv:
            monkeypatch.setattr(sys, "argv", [f"{name}.py", *argv])
        err = io.StringIO()
        with pytest.raises(SystemExit) as exc, contextlib.redirect_stderr(err):
            main(argv) if takes_argv else main()
        assert exc.value.code == 2, err.getvalue()
        return err.getvalue()

    return run
