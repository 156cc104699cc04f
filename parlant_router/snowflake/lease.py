"""A lease in Snowflake: at most one process at a time does a named job.

`server.replicas: many` runs several server processes on one database; some background
work must run in one of them at a time (pruning what a retention lets go). The lease is a
row of ``PARLANT_ROUTER_LEASES`` (NAME, HOLDER, EXPIRES_AT in epoch milliseconds of the
database's clock, so that the processes' own clocks do not matter). Taking it is one MERGE,
which Snowflake runs one at a time per table (MERGE, UPDATE and DELETE lock it): the row is
inserted when missing, and taken over when it is ours or has expired. The holder renews it
while it works and gives it back when done; a holder that dies lets it expire.
"""

from __future__ import annotations

import uuid

from parlant_router.snowflake.database import SnowflakeDocumentDatabase
from parlant_router.snowflake.identifiers import quote_identifier
from parlant_router.snowflake.runner import Statements
from parlant_router.snowflake.sql import positional

TABLE = "PARLANT_ROUTER_LEASES"
_NOW_MS = "DATE_PART(EPOCH_MILLISECOND, SYSDATE())"


class Lease:
    """The lease `name` on `database`'s schema, as seen by one holder (a fresh one per
    instance)."""

    def __init__(self, database: SnowflakeDocumentDatabase, name: str, *, ttl: float) -> None:
        self.name = name
        self.holder = uuid.uuid4().hex
        self.ttl = ttl
        """Seconds the lease lasts after it is taken or renewed."""
        self._database = database
        self._table = quote_identifier(TABLE)
        self._created = False

    async def acquire(self) -> bool:
        """Take the lease, or renew it if it is ours; False when another holder has it."""

        def work(statements: Statements) -> bool:
            if not self._created:
                statements.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._table} (NAME STRING NOT NULL, "
                    "HOLDER STRING NOT NULL, EXPIRES_AT NUMBER NOT NULL)"
                )
                self._created = True
            sql, values = positional(
                f"MERGE INTO {self._table} AS L USING (SELECT :1 AS NAME, :2 AS HOLDER, "
                f"{_NOW_MS} + :3 AS EXPIRES_AT, {_NOW_MS} AS NOW_MS) AS N ON L.NAME = N.NAME "
                "WHEN MATCHED AND (L.HOLDER = N.HOLDER OR L.EXPIRES_AT < N.NOW_MS) THEN "
                "UPDATE SET HOLDER = N.HOLDER, EXPIRES_AT = N.EXPIRES_AT "
                "WHEN NOT MATCHED THEN INSERT (NAME, HOLDER, EXPIRES_AT) "
                "VALUES (N.NAME, N.HOLDER, N.EXPIRES_AT)",
                (self.name, self.holder, int(self.ttl * 1000)),
            )
            # Retried after a lost answer, the MERGE finds the lease ours and renews it.
            return statements.execute(sql, values) > 0

        return await self._database.run("lease", TABLE, work)

    async def release(self) -> None:
        """Give the lease back if it is ours, so that another holder need not wait for it."""
        await self._database.run(
            "lease",
            TABLE,
            lambda s: s.execute(
                f"UPDATE {self._table} SET EXPIRES_AT = 0 WHERE NAME = :1 AND HOLDER = :2",
                (self.name, self.holder),
            ),
        )
