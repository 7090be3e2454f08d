"""PyG ``BaseTransform`` wrappers of graphkit's methods."""

from graphkit.transforms.fastrp import FastRP
from graphkit.transforms.stable import STABLERefine

__all__ = ["FastRP", "STABLERefine"]
