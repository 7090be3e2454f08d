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


def test_the_wheel_carries_the_package_and_the_dataset_manifests(tmp_path):
    # `pip install .` (or from git) has no repository beside the package: every loader reads
    # its manifest from the copy inside the wheel (graphkit/_datasets)
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(root), "--no-deps", "-q", "-w",
         str(tmp_path / "dist"), "--config-settings=cmake.define.GRAPHKIT_BUILD_CPP=OFF",
         f"--config-settings=build-dir={tmp_path / 'build'}"],
        check=True, timeout=600)
    (wheel,) = (tmp_path / "dist").glob("graphkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    manifests = sorted(p.name for p in (root / "datasets").glob("*.json"))
    assert manifests and {f"graphkit/_datasets/{m}" for m in manifests} <= names
    assert {"graphkit/__init__.py", "graphkit/data/download.py", "graphkit/cli/__init__.py"} \
        <= names
