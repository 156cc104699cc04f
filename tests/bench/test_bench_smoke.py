"""The benchmark machinery end to end at tiny sizes, for both adapters (not a performance test)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from bench.adapters import OURS, UPSTREAM
from bench.parameters import QUICK
from bench.report import render, targets
from bench.run import RunResults, run
from bench.turns import TurnSequence

TINY = replace(
    QUICK,
    latencies_ms=(5.0,),
    concurrency=(2,),
    concurrency_latency_ms=5.0,
    turn_window_seconds=0.5,
    read_window_seconds=0.3,
    append_sizes=(5, 20),
    appends=1,
    migration_documents=30,
    upstream_migration_documents=10,
)


@pytest.fixture(scope="module")
def results() -> RunResults:
    # One run serves every test here: it is the expensive part.
    return asyncio.run(run(TINY, TurnSequence.load(), [UPSTREAM, OURS]))


def test_turn_statements_are_positive_and_consistent(results: RunResults) -> None:
    sequence_length = len(results.sequence.turn)
    for name in (UPSTREAM, OURS):
        turns = results.adapters[name].turns
        assert turns is not None
        assert turns.turns == TINY.sessions * sum(TINY.turns_at(lat) for lat in TINY.latencies_ms)
        assert (
            turns.statements
            == sum(turns.statements_by_turn)
            == sum(turns.statements_by_call.values())
        )
        assert sum(turns.calls_by_label.values()) == turns.turns * sequence_length
        # Every collection call reaching the database costs at least one statement.
        assert turns.statements >= turns.collection_calls.floor() > 0
        # The same recorded turn costs the same statements every time it is replayed.
        assert len(set(turns.statements_by_turn)) == 1, turns.statements_by_turn


def test_upstream_counts_match_the_issue(results: RunResults) -> None:
    # Issue 5 measured upstream per call: create_event 3, list_events 2, read_session 1,
    # update_session 3 statements. The meter must see exactly those.
    turns = results.adapters[UPSTREAM].turns
    assert turns is not None
    per_call = {
        label: turns.statements_by_call[label] / turns.calls_by_label[label]
        for label in turns.calls_by_label
    }
    assert per_call["sessions.create_event"] == 3
    assert per_call["sessions.list_events"] == 2
    assert per_call["sessions.read_session"] == 1
    assert per_call["sessions.update_session"] == 3


def test_other_workloads_did_work(results: RunResults) -> None:
    for name in (UPSTREAM, OURS):
        adapter = results.adapters[name]
        assert [f.concurrency for f in adapter.concurrent_turns] == [2]
        assert [f.concurrency for f in adapter.concurrent_reads] == [2]
        assert all(f.units > 0 for f in adapter.concurrent_reads)
        assert [f.events for f in adapter.appends] == [5, 20]
        assert all(f.statements > 0 and len(f.seconds) == 1 for f in adapter.appends)
        assert adapter.migrations, name
        for migration in adapter.migrations:
            assert migration.statements > 0
            assert migration.migrated == migration.documents
        assert adapter.connections > 0
    assert [f.concurrency for f in results.adapters[OURS].session_lock_turns] == [2]
    assert not results.adapters[UPSTREAM].session_lock_turns
    documents = {m.documents for m in results.adapters[OURS].migrations}
    assert documents == {10, 30}
    assert {m.documents for m in results.adapters[UPSTREAM].migrations} == {10}


def test_report_renders(results: RunResults) -> None:
    text = render(results, command="pytest")
    for heading in (
        "## Machine",
        "## Parameters",
        "## Targets (from issue 5)",
        "## Statements per turn",
        "## Time per turn",
        "## Concurrent turns",
        "## Concurrent reads",
        "## Event append",
        "## Opening a store that needs migration",
    ):
        assert heading in text
    assert "`sessions.create_event`" in text
    verdicts = {row.verdict for row in targets(results)}
    assert verdicts <= {"met", "missed", "not measured"}
    # Tiny runs measure neither C=8 at 80 ms nor 10,000 migrating documents.
    assert "not measured" in verdicts
