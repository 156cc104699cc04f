"""Custom-backend factories used by the router tests, imported by the `factory:` string
(`tests.router.factories:json_database`) as a user's package would be."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from parlant.adapters.db.json_file import JSONFileDocumentDatabase


def json_database(logger: Any, options: dict[str, Any], route: Any) -> JSONFileDocumentDatabase:
    directory = Path(options["directory"])
    directory.mkdir(parents=True, exist_ok=True)
    return JSONFileDocumentDatabase(logger, directory / f"{route.store}.json")


async def async_json_database(
    logger: Any, options: dict[str, Any], route: Any
) -> JSONFileDocumentDatabase:
    return json_database(logger, options, route)


def broken(logger: Any, options: dict[str, Any], route: Any) -> Any:
    raise ConnectionError("the database said no")


def not_a_db(logger: Any, options: dict[str, Any], route: Any) -> Any:
    return {}
