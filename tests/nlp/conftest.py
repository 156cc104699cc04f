"""Fixtures of the NLP tests: Parlant's registered schemas and a ready offline service."""

from __future__ import annotations

import ast
import inspect
from typing import Any

import pytest
from parlant.core.loggers import LogLevel, StdoutLogger
from parlant.core.meter import LocalMeter
from parlant.core.tracer import LocalTracer
from pydantic import BaseModel

from parlant_router.nlp.offline import OfflineNLPService


def registered_schemas() -> list[type[BaseModel]]:
    """Every schema Parlant's server registers a generator for, read from its source.

    `initialize_container` loops over a literal tuple of schema classes; reading
    it keeps this list in step with the installed Parlant instead of a copy.
    """
    import parlant.bin.server as server

    tree = ast.parse(inspect.getsource(server.initialize_container))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.For)
            and isinstance(node.target, ast.Name)
            and node.target.id == "schema"
            and isinstance(node.iter, ast.Tuple)
        ):
            names = [e.id for e in node.iter.elts if isinstance(e, ast.Name)]
            schemas: list[Any] = [getattr(server, name) for name in names]
            return schemas
    raise AssertionError("Parlant's initialize_container no longer registers schemas in a loop")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Parametrizes over the live list, so a schema added by a Parlant upgrade
    # is tested without anyone editing a copy of the list.
    if "registered_schema" in metafunc.fixturenames:
        schemas = registered_schemas()
        metafunc.parametrize("registered_schema", schemas, ids=[s.__name__ for s in schemas])


@pytest.fixture
def all_registered_schemas() -> list[type[BaseModel]]:
    return registered_schemas()


@pytest.fixture
def service() -> OfflineNLPService:
    tracer = LocalTracer()
    logger = StdoutLogger(tracer, LogLevel.WARNING)
    return OfflineNLPService(logger, tracer, LocalMeter(logger))
