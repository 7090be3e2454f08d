"""Message-passing layers, one per file."""

__all__: list[str] = []
