import importlib

import graphkit


def test_every_public_submodule_imports():
    # a name in __all__ without its package breaks `from graphkit import *`
    for name in graphkit.__all__:
        assert getattr(graphkit, name) is not None
    namespace: dict = {}
    exec("from graphkit import *", namespace)
    assert set(graphkit.__all__) <= set(namespace)


def test_subpackage_exports_resolve():
    for package in ["nn", "nn.quant", "temporal", "robust", "embed", "graphlets", "data",
                    "sampling", "train", "metrics", "transforms", "extras",
                    *(f"extras.{sub}" for sub in graphkit.extras.SUBPACKAGES)]:
        module = importlib.import_module(f"graphkit.{package}")
        for name in getattr(module, "__all__", []):
            assert hasattr(module, name), f"graphkit.{package}.__all__ lists missing {name}"


def test_test_modules_have_unique_basenames():
    # pytest's default import mode refuses a second tests/**/test_x.py of the same name
    from collections import Counter
    from pathlib import Path

    names = Counter(p.name for p in (Path(__file__).parent).rglob("test_*.py"))
    assert not [n for n, c in names.items() if c > 1]
