"""`parlant-server run --module parlant_router.module`: route stores from parlant.yaml.

Parlant's module protocol: `configure_module(container)` runs before Parlant defines its
default stores (so the routed ones take their place), `shutdown_module()` when the server
stops. The file comes from `PARLANT_CONFIG` (default `./parlant.yaml`) and the environment
from `PARLANT_ENV`. In this mode parlant-server's own flags decide host, port, NLP service
and home; the file decides only where the stores live (and, when vector-backed stores are
routed, the embedder they index with: `server.nlp`).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from parlant_router.config.loading import load_config
from parlant_router.errors import ConfigError, ParlantRouterError
from parlant_router.router import Router

if TYPE_CHECKING:
    from lagom import Container

# The module protocol has no per-server context: the Router lives as long as the module.
_router: Router | None = None


async def configure_module(container: Container) -> Container:
    """Open a Router for $PARLANT_CONFIG / $PARLANT_ENV and route the container's stores."""
    global _router
    await shutdown_module()
    try:
        router = Router(load_config())
        await router.__aenter__()
        _router = router
        return await router.configure_container(container)
    except ParlantRouterError as error:
        await shutdown_module()
        # Same contract as the CLI: one line per mistake, no traceback, 2 for a config mistake.
        for line in str(error).splitlines():
            print(f"parlant_router.module: {line}", file=sys.stderr)
        raise SystemExit(2 if isinstance(error, ConfigError) else 1) from None


async def shutdown_module() -> None:
    """Close every database, pool and emulator the Router opened (idempotent)."""
    global _router
    router, _router = _router, None
    if router is not None:
        await router.aclose()
