"""The replicas workload end to end at quick sizes (the machinery and the safety, not speed).

Real `parlant-router run` servers against one instrumented emulator: `replicas: one`, then
`replicas: many` with 2 and then 4 replicas (bench/replicas.py, `QUICK_REPLICAS`). The safety
counts must be zero; every other figure must be present and sane. No performance target is
asserted.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from bench.replicas import (
    CHANGE_FEED,
    QUICK_REPLICAS,
    UNATTRIBUTED,
    ReplicasResults,
    run_replicas,
)
from bench.report import render, replicas_targets

P = QUICK_REPLICAS


@pytest.fixture(scope="module")
def results() -> ReplicasResults:
    # One run serves every test here: starting the servers is the expensive part.
    started = time.perf_counter()
    outcome = asyncio.run(run_replicas(P))
    print(f"replicas workload (quick): {time.perf_counter() - started:.1f} s")
    return outcome


def test_every_server_ran_in_its_mode_and_stopped_cleanly(results: ReplicasResults) -> None:
    names = [s.name for s in results.servers]
    expected = ["one", *(f"replica {n + 1}" for n in range(max(P.replica_counts)))]
    assert names == expected
    for server in results.servers:
        assert server.startup_seconds is not None and server.startup_seconds > 0, server
        assert server.mode_logged, f"{server.name} did not log its Replicas: mode"
        assert server.exit_status == 0, (server.name, server.error_lines)
        assert not server.error_lines, (server.name, server.error_lines[:3])
    # A failed step is the product misbehaving: its message says which.
    assert not results.failures, results.failures


def test_no_event_or_key_is_lost_or_doubled(results: ReplicasResults) -> None:
    assert [f.replicas for f in results.safety] == sorted(P.replica_counts)
    for figure in results.safety:
        context = f"{figure.replicas} replicas"
        assert not figure.post_failures, (context, figure.post_failures)
        assert not figure.failures, (context, figure.failures)
        assert figure.quiet, context
        assert figure.acknowledged == P.sessions * P.messages, context
        # Each customer message at least, and the events of the turns they started.
        assert figure.events >= figure.acknowledged, context
        assert figure.duplicate_offsets == 0, context
        assert figure.missing_offsets == 0, context
        assert figure.acknowledged_missing == 0, context
        assert figure.stored_twice == 0, context
        assert figure.disagreeing_sessions == 0, context
        assert figure.patch_keys == figure.replicas * P.patch_keys, context
        assert figure.keys_lost == 0, context
        assert not figure.patch_disagreement, context


def test_staleness_is_measured(results: ReplicasResults) -> None:
    figure = results.staleness
    assert figure is not None
    assert figure.trials == P.staleness_trials
    assert not figure.failures, figure.failures
    assert len(figure.after_ack) == len(figure.after_post) == P.staleness_trials
    for after_ack, after_post in zip(figure.after_ack, figure.after_post, strict=True):
        assert 0 <= after_ack <= after_post


def test_statements_per_turn_are_measured_for_both_modes(results: ReplicasResults) -> None:
    for mode in ("one", "many"):
        turns = results.turns[mode]
        assert [t.warm_up for t in turns] == [True] * P.warmup_turns + [False] * P.measured_turns
        for turn in turns:
            assert turn.counts.total > 0
            assert sum(turn.counts.by_store.values()) == turn.counts.total
            assert turn.quiet, mode
    one = results.measured_turns("one")
    many = results.measured_turns("many")
    # Only replicas: many has a change feed; with two processes running, it polls.
    assert all(CHANGE_FEED not in t.counts.by_store for t in one)
    assert all(t.counts.by_store.get(CHANGE_FEED, 0) > 0 for t in many)


def test_idle_statements_are_attributed_to_each_replica(results: ReplicasResults) -> None:
    idle = results.idle
    assert idle is not None
    assert idle.replicas == ["replica 1", "replica 2"]
    assert idle.idle.clients == P.idle_clients
    assert idle.idle.seconds >= P.idle_window_seconds
    assert idle.interval == P.interval
    # Both replicas poll the change table while clients wait; every statement is theirs.
    for name in idle.replicas:
        assert idle.by_process.get(name, 0) > 0, idle.by_process
    assert idle.by_process.get(UNATTRIBUTED, 0) == 0, idle.by_process
    assert sum(idle.by_process.values()) == idle.idle.counts.total


def test_throughput_is_measured_for_one_and_two_replicas(results: ReplicasResults) -> None:
    assert set(results.throughput) == {"one", "many"}
    for mode, figure in results.throughput.items():
        assert not figure.failures, (mode, figure.failures)
        assert figure.sessions == P.throughput_sessions
        assert figure.completed > 0, f"{mode}: no turn completed in the window"
        rate = figure.turns_per_second
        assert rate is not None and 0 < rate < 100
        assert figure.counts.total > 0
    assert results.throughput["one"].replicas == 1
    assert results.throughput["many"].replicas == 2


def test_report_renders(results: ReplicasResults) -> None:
    text = render(None, command="pytest", replicas=results)
    for heading in (
        "## Machine",
        "## Several replicas",
        "### Targets (several replicas)",
        "### Safety",
        "### Staleness",
        "### Statements per turn (L = 0)",
        "### Idle replicas",
        "### Throughput",
        "### Servers",
    ):
        assert heading in text
    rows = replicas_targets(results)
    assert {row.verdict for row in rows} <= {"met", "missed"}, rows
    assert all(
        row.verdict == "met"
        for row in rows
        if "duplicate offset" in row.target or "key" in row.target
    )
