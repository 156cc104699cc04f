"""Map the ``server.nlp`` setting of parlant.yaml to a Parlant NLP service factory.

Three kinds of names:

- ``offline``: :class:`parlant_router.nlp.offline.OfflineNLPService`;
- a Parlant provider, any static method of ``parlant.sdk.NLPServices``
  (``openai``, ``anthropic``, ``snowflake``, ``gemini``, ...);
- ``package.module:attribute``: your own, either a callable taking the
  container and returning an ``NLPService``, or an ``NLPService`` subclass
  (built from the container, which supplies its constructor arguments).

The result is what ``p.Server(nlp_service=...)`` takes: a callable from the
container to the service. Nothing provider-specific is imported until the
server calls it, so choosing ``anthropic`` does not need ``openai`` installed.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from parlant_router.errors import did_you_mean
from parlant_router.import_paths import ImportPathError, import_object, parse_import_path

if TYPE_CHECKING:
    from lagom import Container
    from parlant.core.nlp.service import NLPService

#: The router's own service, beside Parlant's providers.
OFFLINE = "offline"

NLPServiceFactory = Callable[["Container"], "NLPService"]


def resolve_nlp_service(name: str) -> NLPServiceFactory:
    """Return the factory for the NLP service called ``name``.

    Raises ``ValueError`` (one line, naming the valid choices) for an unknown
    name or a ``module:attribute`` that cannot be imported or is not a factory.
    """
    check_nlp_name(name)
    spec = name.strip()
    if ":" in spec:
        return _custom_factory(spec)
    key = spec.lower()
    if key == OFFLINE:
        return _offline_factory
    return _parlant_factory(key)


def check_nlp_name(name: str) -> None:
    """Raise ``ValueError`` (one line) if ``name`` cannot name an NLP service.

    Imports nothing, neither Parlant nor user code: meant for validating a
    configuration file. A ``module:attribute`` is only checked for its form;
    :func:`resolve_nlp_service` imports it.
    """
    spec = name.strip()
    if ":" in spec:
        try:
            parse_import_path(spec)
        except ImportPathError:
            raise ValueError(f"NLP service {spec!r}: expected 'package.module:factory'") from None
        return
    if spec.lower() not in nlp_service_names():
        raise ValueError(_unknown_name_message(spec))


def nlp_service_names() -> tuple[str, ...]:
    """Every accepted plain name: ``offline`` first, then Parlant's providers."""
    return (OFFLINE, *parlant_nlp_service_names())


@cache
def parlant_nlp_service_names() -> tuple[str, ...]:
    """The provider names of ``parlant.sdk.NLPServices``, read from its source.

    Importing ``parlant.sdk`` takes seconds and creates Parlant's home
    directory as a side effect; reading the class's method names from the
    source gives the same list without either, so a config can be validated
    before (or without) starting Parlant.
    """
    spec = importlib.util.find_spec("parlant.sdk")
    if spec is None or spec.origin is None:
        raise RuntimeError("parlant is not installed")
    with open(spec.origin, encoding="utf-8") as source:
        tree = ast.parse(source.read(), spec.origin)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "NLPServices":
            return tuple(
                item.name
                for item in node.body
                if isinstance(item, ast.FunctionDef) and not item.name.startswith("_")
            )
    raise RuntimeError("parlant.sdk has no NLPServices class: unsupported Parlant version")


def _offline_factory(container: Container) -> NLPService:
    from parlant_router.nlp.offline import OfflineNLPService

    return OfflineNLPService.from_container(container)


def _parlant_factory(name: str) -> NLPServiceFactory:
    def factory(container: Container) -> NLPService:
        from parlant.sdk import NLPServices

        service: NLPService = getattr(NLPServices, name)(container)
        return service

    factory.__name__ = factory.__qualname__ = f"NLPServices.{name}"
    return factory


def _custom_factory(spec: str) -> NLPServiceFactory:
    from parlant.core.nlp.service import NLPService

    try:
        target: Any = import_object(spec)
    except ImportPathError as error:
        if error.problem == "import":
            # Keeps the wording NLP service errors have always had.
            raise ValueError(
                f"NLP service {spec!r}: cannot import {error.module!r} ({error.reason})"
            ) from None
        raise ValueError(f"NLP service {spec!r}: {error}") from None

    if isinstance(target, type):
        if not issubclass(target, NLPService):
            raise ValueError(f"NLP service {spec!r}: {target.__name__} is not an NLPService")
        service_class: type[NLPService] = target

        def build(container: Container) -> NLPService:
            # The container autowires the constructor, as Parlant does for its
            # own components (Logger, Tracer, Meter, ...).
            return container[service_class]

        return build

    if not callable(target):
        attribute = spec.partition(":")[2]
        raise ValueError(f"NLP service {spec!r}: {attribute!r} is not callable")
    user_factory: Callable[[Container], object] = target

    def call(container: Container) -> NLPService:
        service = user_factory(container)
        if not isinstance(service, NLPService):
            raise TypeError(
                f"NLP service {spec!r} returned {type(service).__name__}, not an NLPService"
            )
        return service

    return call


def _unknown_name_message(name: str) -> str:
    choices = nlp_service_names()
    # Names are matched case-insensitively (`OpenAI` is `openai`), so are suggestions.
    return (
        f"unknown NLP service {name!r}{did_you_mean(name.lower(), choices)}; "
        f"choose one of: {', '.join(choices)}, "
        "or 'package.module:factory'"
    )
