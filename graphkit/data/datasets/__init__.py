"""Dataset loaders, one module per family; importing this package registers them all."""

from graphkit.data.datasets import npz, planetoid, prognn  # noqa: F401
