"""Generation metrics."""

__all__: list[str] = []
