"""PyG ``BaseTransform`` wrappers of graphkit's methods."""

from graphkit.transforms.fastrp import FastRP

__all__ = ["FastRP"]
