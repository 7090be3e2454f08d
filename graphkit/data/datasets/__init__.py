"""Dataset loaders, one module per family; importing this package registers them all."""

from graphkit.data.datasets import hypergcn, networks, npz, planetoid, prognn  # noqa: F401
