"""Stage 3, methods: a method is a named configuration bundle plus the hooks it declares
(:mod:`.bundles`, registry ``METHODS``); importing this package registers them."""

from .bundles import Method

__all__ = ["Method"]
