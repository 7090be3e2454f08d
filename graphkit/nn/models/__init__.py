"""Models built from graphkit and PyG layers."""

__all__: list[str] = []
