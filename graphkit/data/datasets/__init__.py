"""Dataset loaders, one module per family; importing this package registers them all."""

from graphkit.data.datasets import (  # noqa: F401
    hypergcn,
    networks,
    npz,
    ogb,
    planetoid,
    prognn,
    synthetic,
)
