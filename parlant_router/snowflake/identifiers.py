"""Snowflake's naming rules for tables, the one home of them.

Upstream's rule, kept for drop-in compatibility: a table is ``<PREFIX><collection>`` with
every non-word character turned into ``_``, upper-cased (Snowflake folds unquoted
identifiers to upper case), and ``_`` put in front of a leading digit. The config layer
imports this module to name tables in `routes` and to find collisions, so it imports
nothing heavy.
"""

from __future__ import annotations

import re

from parlant_router.snowflake.errors import SnowflakeOperationError

_IDENTIFIER_RE = re.compile(r"[^0-9A-Za-z_]")


def sanitize_identifier(raw: str) -> str:
    """Upstream's table naming rule: non-word characters to ``_``, upper case, no leading digit."""
    sanitized = _IDENTIFIER_RE.sub("_", raw).upper()
    if not sanitized:
        raise SnowflakeOperationError("a Snowflake identifier cannot be empty")
    return f"_{sanitized}" if sanitized[0].isdigit() else sanitized


def quote_identifier(name: str) -> str:
    """A double-quoted identifier (names here are already sanitized to ``[A-Z0-9_]``)."""
    return '"' + name.replace('"', '""') + '"'


def table_name(prefix: str, name: str) -> str:
    """Upstream's table name for a collection: ``<PREFIX><NAME>`` sanitized."""
    return sanitize_identifier(prefix + name)


def failed_table_name(prefix: str, name: str) -> str:
    """Upstream's table for documents whose migration failed."""
    return sanitize_identifier(prefix + name + "_failed_migrations")
