"""Pruning a store on a snowflake backend: found and deleted in SQL, a range at a time.

A pass reads the ids of expired documents in pages of `PAGE_ROWS` (keyset by ID). Each page
is the ID range (previous page's last, this page's last]; its statements name the range by
its two ends, never by a list of ids, so they stay a few hundred bytes whatever the ids,
and each re-decides what to delete from what is stored when it runs:

1. The expiring documents of the range that are expired now: a session of the page that
   received an event since the page was read is kept.
2. The dependents (events) in the range whose parent no longer exists: an event appended
   between the two statements to a session just deleted goes with it.
3. At the end of a pass, dependents older than the cutoff whose parent does not exist
   (left by a pass that stopped between 1 and 2) are deleted.

So a prune of 100,000 sessions is a few dozen statements, no document crosses the network,
and a pass stopped anywhere is finished by the next one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from parlant_router.retention.rules import Deleted, collections_of, utc_text
from parlant_router.snowflake.database import SnowflakeDocumentDatabase
from parlant_router.snowflake.identifiers import quote_identifier, table_name
from parlant_router.snowflake.sql import Params
from parlant_router.stores.catalog import RetentionRule

#: Expiring documents per page (and per DELETE).
PAGE_ROWS = 5_000


def _text_field(name: str) -> str:
    # Field names here come from the catalog ([a-z_]), never from users.
    return f"DATA['{name}']::STRING"


def _in_range(column: str, after: str | None, last: str, params: Params) -> str:
    """`column` within (after, last]; from the first id when `after` is None."""
    lower = "" if after is None else f"{column} > {params.add(after)} AND "
    return f"{lower}{column} <= {params.add(last)}"


class SqlPruning:
    """Finds and deletes what `rule` lets go in the tables of `database` (its prefix)."""

    def __init__(self, database: SnowflakeDocumentDatabase, rule: RetentionRule) -> None:
        self.rule = rule
        self._database = database
        prefix = database.table_prefix
        self._tables = {name: table_name(prefix, name) for name in collections_of(rule)}
        self._fields = dict(rule.dependents)

    def _quoted(self, collection: str) -> str:
        return quote_identifier(self._tables[collection])

    def _expired_condition(self, cutoff: str, params: Params) -> tuple[str, str]:
        """(FROM clause naming the expiring table P, WHERE condition): P's rows older than
        `cutoff` with no activity since."""
        bound = params.add(cutoff)
        source = f"{self._quoted(self.rule.collection)} P"
        condition = f"P.CREATION_UTC < {bound}"
        activity = self.rule.activity
        if activity is not None:
            field = _text_field(self._fields[activity])
            source += (
                f" LEFT JOIN (SELECT {field} AS PARENT_ID, MAX(CREATION_UTC) AS LAST_UTC "
                f"FROM {self._quoted(activity)} GROUP BY 1) A ON A.PARENT_ID = P.ID"
            )
            condition += f" AND (A.LAST_UTC IS NULL OR A.LAST_UTC < {bound})"
        return source, condition

    def _orphan(self, field: str) -> str:
        """A dependent whose parent does not exist (NOT IN: IDs are never NULL, and a
        dependent without the field is kept)."""
        return f"{_text_field(field)} NOT IN (SELECT ID FROM {self._quoted(self.rule.collection)})"

    async def count(self, before: datetime) -> dict[str, int]:
        """Documents of each collection a prune at `before` would delete now (nothing is)."""
        cutoff = utc_text(before)
        params = Params()
        source, condition = self._expired_condition(cutoff, params)
        expired = f"SELECT P.ID FROM {source} WHERE {condition}"
        parts = [f"(SELECT COUNT(*) FROM ({expired}))"]
        for collection, field in self.rule.dependents:
            parts.append(
                f"(SELECT COUNT(*) FROM {self._quoted(collection)} WHERE "
                f"{_text_field(field)} IN ({expired}) OR (CREATION_UTC < "
                f"{params.add(cutoff)} AND {self._orphan(field)}))"
            )
        rows = await self._database.run(
            "prune",
            self._tables[self.rule.collection],
            lambda s: s.query("SELECT " + ", ".join(parts), params.values),
        )
        return dict(zip(collections_of(self.rule), (int(n) for n in rows[0]), strict=True))

    async def prune(self, before: datetime, deleted: Deleted | None = None) -> dict[str, int]:
        """Delete what expired `before`; the documents deleted per collection. `deleted` is
        told each page's ids (a superset of what the page deleted)."""
        cutoff = utc_text(before)
        counts = dict.fromkeys(collections_of(self.rule), 0)
        after: str | None = None
        while True:
            page = await self._expired_page(cutoff, after)
            if not page:
                break
            await self._delete_range(after, page[-1], cutoff, counts)
            if deleted is not None:
                for collection in collections_of(self.rule):
                    deleted(collection, page)
            if len(page) < PAGE_ROWS:
                break
            after = page[-1]
        for collection, field in self.rule.dependents:
            counts[collection] += await self._execute(
                collection,
                f"DELETE FROM {self._quoted(collection)} WHERE CREATION_UTC < :1 AND "
                f"{self._orphan(field)}",
                [cutoff],
            )
        return counts

    async def _execute(self, collection: str, sql: str, values: Sequence[object]) -> int:
        """Run one DELETE on `collection`'s table; the rows it deleted."""
        return await self._database.run(
            "prune", self._tables[collection], lambda s: s.execute(sql, values)
        )

    async def _expired_page(self, cutoff: str, after: str | None) -> list[str]:
        params = Params()
        source, condition = self._expired_condition(cutoff, params)
        if after is not None:
            condition += f" AND P.ID > {params.add(after)}"
        rows = await self._database.run(
            "prune",
            self._tables[self.rule.collection],
            lambda s: s.query(
                f"SELECT P.ID FROM {source} WHERE {condition} ORDER BY P.ID LIMIT {int(PAGE_ROWS)}",
                params.values,
            ),
        )
        return [str(row[0]) for row in rows]

    async def _delete_range(
        self, after: str | None, last: str, cutoff: str, counts: dict[str, int]
    ) -> None:
        params = Params()
        condition = (
            f"{_in_range('ID', after, last, params)} AND CREATION_UTC < {params.add(cutoff)}"
        )
        activity = self.rule.activity
        if activity is not None:
            field = _text_field(self._fields[activity])
            condition += (
                f" AND ID NOT IN (SELECT {field} FROM {self._quoted(activity)} WHERE "
                f"{_in_range(field, after, last, params)} AND CREATION_UTC >= "
                f"{params.add(cutoff)})"
            )
        parent = self._quoted(self.rule.collection)
        counts[self.rule.collection] += await self._execute(
            self.rule.collection, f"DELETE FROM {parent} WHERE {condition}", params.values
        )
        for collection, field_name in self.rule.dependents:
            field = _text_field(field_name)
            params = Params()
            condition = (
                f"{_in_range(field, after, last, params)} AND {field} NOT IN (SELECT ID FROM "
                f"{parent} WHERE {_in_range('ID', after, last, params)})"
            )
            counts[collection] += await self._execute(
                collection,
                f"DELETE FROM {self._quoted(collection)} WHERE {condition}",
                params.values,
            )
