"""parlant-router: route every Parlant store to a backend declared in parlant.yaml."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parlant_router.router import Router

__all__ = ["Router"]


def __getattr__(name: str) -> Any:
    # Lazy: importing Parlant takes seconds, and `parlant-router routes/schema`
    # must stay fast and work without touching it.
    if name == "Router":
        from parlant_router.router import Router

        return Router
    raise AttributeError(f"module 'parlant_router' has no attribute {name!r}")
