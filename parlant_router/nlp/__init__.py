"""NLP services for the router: the offline service and the ``server.nlp`` name mapping.

``resolve_nlp_service(name)`` turns ``offline``, a Parlant provider name or
``package.module:factory`` into the factory ``p.Server(nlp_service=...)``
takes; ``nlp_home`` and ``bind_parlant_home`` keep offline caches apart from
real ones. ``OfflineNLPService`` is loaded on first use: it imports Parlant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from parlant_router.nlp.home import bind_command_home, bind_parlant_home, nlp_home
from parlant_router.nlp.services import (
    OFFLINE,
    NLPServiceFactory,
    check_nlp_name,
    nlp_service_names,
    resolve_nlp_service,
)

if TYPE_CHECKING:
    from parlant_router.nlp.offline import OfflineNLPService

__all__ = [
    "OFFLINE",
    "NLPServiceFactory",
    "OfflineNLPService",
    "bind_command_home",
    "bind_parlant_home",
    "check_nlp_name",
    "nlp_home",
    "nlp_service_names",
    "resolve_nlp_service",
]


def __getattr__(name: str) -> Any:
    if name == "OfflineNLPService":
        from parlant_router.nlp.offline import OfflineNLPService

        return OfflineNLPService
    raise AttributeError(f"module 'parlant_router.nlp' has no attribute {name!r}")
