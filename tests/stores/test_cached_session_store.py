"""Parlant's session store through the read cache against the same store without it.

A hypothesis state machine drives two `ConcurrentSessionDocumentStore`s on one emulator
database (two table prefixes): one over `CachedDocumentDatabase` with the partitions the
router uses, one directly over our Snowflake database. Every operation Parlant's session
store offers runs on both; answers (sessions, events, errors) must be identical once the
random ids each store generates are mapped onto each other. A second variant gives the
cache a budget too small for the sessions it sees, so partitions are evicted and reloaded
throughout.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    rule,
    run_state_machine_as_test,
)
from parlant.core.sessions import (
    Event,
    EventKind,
    EventSource,
    Session,
    SessionId,
    SessionUpdateParams,
)

from parlant_router.snowflake import SnowflakeDocumentDatabase, SnowflakeEmulator
from parlant_router.stores.catalog import STORES
from parlant_router.stores.read_cache import CachedDocumentDatabase
from parlant_router.stores.session_store import ConcurrentSessionDocumentStore
from tests.support.logger import RecordingLogger
from tests.support.loop_thread import LoopThread

_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
TEXT = st.sampled_from(["hi", "$HOME", "", "plan?", "ünï"])
DATA = st.one_of(
    st.builds(lambda m: {"message": m}, TEXT),
    st.builds(lambda s: {"status": s}, st.sampled_from(["ready", "typing", "processing"])),
    st.builds(lambda c: {"chunks": c}, st.lists(st.one_of(TEXT, st.none()), max_size=3)),
)
METADATA = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.one_of(st.integers(0, 3), TEXT))
LABELS = st.sets(st.sampled_from(["vip", "eu", "new"]), max_size=2)


def _session(session: Session, ids: dict[str, str]) -> dict[str, Any]:
    view = asdict(session)
    view["id"] = ids.get(session.id, session.id)
    view["labels"] = sorted(session.labels)
    return view


def _event(event: Event, ids: dict[str, str]) -> dict[str, Any]:
    view = asdict(event)
    view["id"] = ids.get(event.id, event.id)
    return view


class SessionStorePair:
    """The two stores, and the ids of the direct one mapped to the cached one's."""

    def __init__(
        self, cached: ConcurrentSessionDocumentStore, direct: ConcurrentSessionDocumentStore
    ) -> None:
        self.cached = cached
        self.direct = direct
        self.ids: dict[str, str] = {}
        """Direct store's id -> the cached store's id of the same session or event."""


class CachedSessionStoreMachine(RuleBasedStateMachine):
    sessions = Bundle("sessions")
    events = Bundle("events")

    def __init__(self, loop: LoopThread, open_pair: Callable[[], Awaitable[Any]]) -> None:
        super().__init__()
        self.loop = loop
        self.stack, self.pair = loop.run(open_pair())
        self.clock = 0

    def teardown(self) -> None:
        self.loop.run(self.stack.aclose())

    def _now(self) -> datetime:
        self.clock += 1
        return _EPOCH + timedelta(seconds=self.clock)

    def _both(
        self, call: Callable[[ConcurrentSessionDocumentStore, dict[str, str]], Awaitable[Any]]
    ) -> tuple[Any, Any]:
        """Run `call` on both stores: (cached answer, direct answer), errors by type."""
        same_ids = {v: v for v in self.pair.ids.values()}

        async def attempt(store: ConcurrentSessionDocumentStore, ids: dict[str, str]) -> Any:
            try:
                return await call(store, ids)
            except Exception as error:
                return ("raised", type(error).__name__)

        return (
            self.loop.run(attempt(self.pair.cached, same_ids)),
            self.loop.run(attempt(self.pair.direct, {v: k for k, v in self.pair.ids.items()})),
        )

    def _compare(self, cached: Any, direct: Any) -> None:
        ids = self.pair.ids
        if isinstance(cached, Session) and isinstance(direct, Session):
            assert _session(cached, {}) == _session(direct, ids)
        elif isinstance(cached, Event) and isinstance(direct, Event):
            assert _event(cached, {}) == _event(direct, ids)
        elif isinstance(cached, list) and isinstance(direct, list):
            assert [_event(e, {}) for e in cached] == [_event(e, ids) for e in direct]
        else:
            assert cached == direct

    @rule(
        target=sessions,
        mode=st.sampled_from(["auto", "manual"]),
        title=st.one_of(st.none(), TEXT),
        metadata=METADATA,
        labels=LABELS,
    )
    def create_session(
        self, mode: Any, title: str | None, metadata: dict[str, Any], labels: set[str]
    ) -> str:
        at = self._now()
        cached, direct = self._both(
            lambda store, ids: store.create_session(
                customer_id="c1",  # type: ignore[arg-type]
                agent_id="a1",  # type: ignore[arg-type]
                creation_utc=at,
                title=title,
                mode=mode,
                metadata=metadata,
                labels=labels,
            )
        )
        self.pair.ids[direct.id] = cached.id
        self._compare(cached, direct)
        return str(cached.id)

    @rule(
        target=events,
        session=sessions,
        source=st.sampled_from([EventSource.CUSTOMER, EventSource.AI_AGENT]),
        kind=st.sampled_from([EventKind.MESSAGE, EventKind.STATUS]),
        data=DATA,
        metadata=METADATA,
    )
    def create_event(
        self,
        session: str,
        source: EventSource,
        kind: EventKind,
        data: dict[str, Any],
        metadata: dict[str, Any],
    ) -> str:
        at = self._now()
        cached, direct = self._both(
            lambda store, ids: store.create_event(
                SessionId(ids[session]), source, kind, "trace", data, metadata, at
            )
        )
        if isinstance(direct, Event):
            self.pair.ids[direct.id] = cached.id
        self._compare(cached, direct)
        return str(cached.id) if isinstance(cached, Event) else "missing"

    @rule(session=sessions)
    def read_session(self, session: str) -> None:
        self._compare(*self._both(lambda store, ids: store.read_session(SessionId(ids[session]))))

    @rule(
        session=sessions,
        source=st.one_of(st.none(), st.sampled_from([EventSource.CUSTOMER, EventSource.AI_AGENT])),
        kinds=st.lists(st.sampled_from([EventKind.MESSAGE, EventKind.STATUS]), max_size=2),
        min_offset=st.one_of(st.none(), st.integers(0, 4)),
        exclude_deleted=st.booleans(),
    )
    def list_events(
        self,
        session: str,
        source: EventSource | None,
        kinds: list[EventKind],
        min_offset: int | None,
        exclude_deleted: bool,
    ) -> None:
        async def listing(store: ConcurrentSessionDocumentStore, ids: dict[str, str]) -> Any:
            return list(
                await store.list_events(
                    SessionId(ids[session]),
                    source=source,
                    kinds=kinds,
                    min_offset=min_offset,
                    exclude_deleted=exclude_deleted,
                )
            )

        self._compare(*self._both(listing))

    @rule(
        session=sessions,
        params=st.fixed_dictionaries(
            {},
            optional={
                "mode": st.sampled_from(["auto", "manual"]),
                "title": st.one_of(st.none(), TEXT),
                "consumption_offsets": st.builds(lambda n: {"client": n}, st.integers(0, 5)),
                "metadata": METADATA,
            },
        ),
    )
    def update_session(self, session: str, params: SessionUpdateParams) -> None:
        self._compare(
            *self._both(lambda store, ids: store.update_session(SessionId(ids[session]), params))
        )

    @rule(session=sessions, key=st.sampled_from(["a", "b"]), value=st.integers(0, 3))
    def set_metadata(self, session: str, key: str, value: int) -> None:
        self._compare(
            *self._both(lambda store, ids: store.set_metadata(SessionId(ids[session]), key, value))
        )

    @rule(session=sessions, key=st.sampled_from(["a", "b"]))
    def unset_metadata(self, session: str, key: str) -> None:
        self._compare(
            *self._both(lambda store, ids: store.unset_metadata(SessionId(ids[session]), key))
        )

    @rule(session=sessions, labels=LABELS, remove=st.booleans())
    def labels(self, session: str, labels: set[str], remove: bool) -> None:
        async def change(store: ConcurrentSessionDocumentStore, ids: dict[str, str]) -> Session:
            method = store.remove_labels if remove else store.upsert_labels
            return await method(SessionId(ids[session]), labels)

        self._compare(*self._both(change))

    @rule(session=sessions, event=events)
    def read_event(self, session: str, event: str) -> None:
        self._compare(
            *self._both(
                lambda store, ids: store.read_event(
                    SessionId(ids[session]),
                    ids.get(event, event),  # type: ignore[arg-type]
                )
            )
        )

    @rule(session=sessions, event=events, data=st.one_of(st.none(), DATA), metadata=METADATA)
    def update_event(
        self, session: str, event: str, data: dict[str, Any] | None, metadata: dict[str, Any]
    ) -> None:
        params: dict[str, Any] = {"metadata": metadata}
        if data is not None:
            params["data"] = data
        self._compare(
            *self._both(
                lambda store, ids: store.update_event(
                    SessionId(ids[session]),
                    ids.get(event, event),  # type: ignore[arg-type]
                    params,  # type: ignore[arg-type]
                )
            )
        )

    @rule(event=events)
    def delete_event(self, event: str) -> None:
        self._compare(
            *self._both(lambda store, ids: store.delete_event(ids.get(event, event)))  # type: ignore[arg-type]
        )

    @rule(session=sessions)
    def delete_session(self, session: str) -> None:
        self._compare(*self._both(lambda store, ids: store.delete_session(SessionId(ids[session]))))


@pytest.mark.parametrize("max_bytes", [64 * 2**20, 1_500], ids=["roomy", "evicting"])
def test_cached_session_store_answers_as_the_uncached_one(
    emulator: SnowflakeEmulator, max_bytes: int
) -> None:
    loop = LoopThread()
    caches: list[CachedDocumentDatabase] = []

    async def open_pair() -> tuple[AsyncExitStack, SessionStorePair]:
        import uuid

        stack = AsyncExitStack()
        logger = RecordingLogger()
        stores = []
        for cached in (True, False):
            database: Any = await stack.enter_async_context(
                SnowflakeDocumentDatabase(
                    logger,
                    emulator.connect_kwargs(),
                    table_prefix=f"T{uuid.uuid4().hex[:10].upper()}_",
                )
            )
            if cached:
                database = CachedDocumentDatabase(
                    database,
                    partitions=STORES["sessions"].cache_partitions,
                    max_bytes=max_bytes,
                )
                caches.append(database)
            store = ConcurrentSessionDocumentStore(database, allow_migration=True)
            stores.append(await stack.enter_async_context(store))
        return stack, SessionStorePair(stores[0], stores[1])

    try:
        run_state_machine_as_test(
            lambda: CachedSessionStoreMachine(loop, open_pair),
            settings=settings(
                max_examples=8,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
    finally:
        loop.close()
    hits = sum(cache.stats.hits for cache in caches)
    assert hits > 0, "the cached store never answered from its cache"
    if max_bytes < 10_000:
        assert sum(cache.stats.evictions for cache in caches) > 0
