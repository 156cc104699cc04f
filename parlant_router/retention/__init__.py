"""Retention: deleting what `stores.<store>.retention` lets go (sessions, evaluations).

- `rules`: what expires (the catalog's `RetentionRule`) and its cutoff;
- `sql_pruning`: finding and deleting it in SQL on a snowflake backend, a batch at a time;
- `document_pruning`: the same through Parlant's `DocumentCollection` API (json, mongodb,
  transient and custom backends);
- `pruner`: one pass over every store with a retention, counted and logged, and the server's
  background task (one replica at a time under `server.replicas: many`, through a lease).
"""

from __future__ import annotations

from parlant_router.retention.pruner import PruneCounts, Pruner, PruneTask, RetainedStore

__all__ = ["PruneCounts", "PruneTask", "Pruner", "RetainedStore"]
