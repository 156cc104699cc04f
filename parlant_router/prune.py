"""`parlant-router prune`: one pruning pass from the command line, outside the server.

The stores with a retention are opened exactly as the server opens them (a `Router`
limited to them, without its background task), so the same tables and files are pruned,
Parlant's own store checks run first (data that needs migration is refused: run
`parlant-router migrate`), and with `server.replicas: many` the pass takes its turn through
the lease and announces its deletions through the change feed like a server would. With
`server.replicas: one` the server is the only writer of its stores: stop it first, or let
it prune (`server.prune_interval`).
"""

from __future__ import annotations

from collections.abc import Collection

from parlant_router.config.loading import LoadedConfig
from parlant_router.config.secrets import backend_secrets
from parlant_router.config.store_selection import selected_stores
from parlant_router.errors import (
    ParlantRouterError,
    RouterError,
    describe_exception,
)
from parlant_router.retention.pruner import LeaseHeldElsewhere, PruneCounts
from parlant_router.stores.catalog import RETAINED_STORE_NAMES


def retained_stores(loaded: LoadedConfig) -> list[str]:
    """The routed stores whose route sets a retention, in catalog order."""
    return [
        store
        for store in RETAINED_STORE_NAMES
        if (route := loaded.config.stores.get(store)) is not None and route.retention is not None
    ]


async def prune_stores(
    loaded: LoadedConfig, *, dry_run: bool, only: Collection[str] | None = None
) -> list[PruneCounts]:
    """One pass over the stores with a retention (those of `only`, if given); what it
    deleted (or, with `dry_run`, would delete) per store and collection."""
    stores = selected_stores(
        retained_stores(loaded),
        only,
        unavailable="sets no retention (stores that do: {available})",
    )
    if not stores:
        return []
    from parlant_router.nlp import bind_command_home

    bind_command_home(loaded.config.server.home, loaded.config.server.nlp, "prune")

    from lagom import Container
    from parlant.core.common import IdGenerator
    from parlant.core.loggers import Logger, LogLevel, StdoutLogger
    from parlant.core.tracer import LocalTracer, Tracer

    from parlant_router.router import Router

    tracer = LocalTracer()
    logger = StdoutLogger(tracer, LogLevel.WARNING, logger_id="parlant-router prune")
    container = Container()
    container[Tracer] = tracer  # type: ignore[type-abstract]
    container[Logger] = logger  # type: ignore[type-abstract]
    container[IdGenerator] = IdGenerator()
    async with Router(loaded, stores=stores, background_pruning=False) as router:
        await router.configure_container(container)
        pruner = await router.pruner(logger)
        assert pruner is not None, "every store here has a retention"
        try:
            return await pruner.run(dry_run=dry_run)
        except LeaseHeldElsewhere:
            raise RouterError(
                "another process is pruning these stores now (server.replicas: many); "
                "nothing was deleted, try again later"
            ) from None
        except ParlantRouterError:
            raise
        except Exception as error:
            # Each statement is complete on its own: what was deleted stays deleted, and the
            # next pass finishes the job.
            reason = describe_exception(error, secrets=backend_secrets(loaded.config), limit=300)
            raise RouterError(f"prune stopped: {reason}") from None
