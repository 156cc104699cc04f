"""The copy workload end to end at tiny sizes (bench/copy.py).

`parlant-router copy` subprocesses from generated Parlant homes into a metered emulator: a
full copy, a smaller one, one killed once its first events are in, and that one run again.
No timing is asserted; the invariants are: every finished copy is verified, statements are
counted, the kill lands mid-copy, the resumed copy finishes verified, and the report has its
section.
"""

from __future__ import annotations

import time

import pytest

from bench.copy import FULL_RUN, KILLED_RUN, RESUMED_RUN, SMALL_RUN, CopyResults, run_copy
from bench.parameters import QUICK
from bench.report import copy_targets, render


@pytest.fixture(scope="module")
def results() -> CopyResults:
    started = time.perf_counter()
    outcome = run_copy(QUICK)
    print(f"copy workload (quick): {time.perf_counter() - started:.1f} s")
    return outcome


def test_every_finished_copy_is_verified(results: CopyResults) -> None:
    assert [run.label for run in results.runs] == [FULL_RUN, SMALL_RUN, KILLED_RUN, RESUMED_RUN]
    for label in (FULL_RUN, SMALL_RUN, RESUMED_RUN):
        run = results.run(label)
        assert run is not None and run.verified, run
        assert run.stores == 2 and run.statements > 0 and run.peak_rss_bytes > 0
    full, small = results.run(FULL_RUN), results.run(SMALL_RUN)
    assert full is not None and small is not None
    assert full.documents == 2 + QUICK.copy_events + QUICK.copy_sessions + QUICK.copy_customers
    assert small.documents < full.documents


def test_the_killed_copy_stopped_midway_and_resumed(results: CopyResults) -> None:
    killed, resumed = results.run(KILLED_RUN), results.run(RESUMED_RUN)
    assert killed is not None and resumed is not None
    assert killed.exit_status == -9
    assert killed.events_held is not None and 0 < killed.events_held < QUICK.copy_events
    assert resumed.exit_status == 0 and resumed.verified


def test_the_report_has_the_section(results: CopyResults) -> None:
    targets = copy_targets(results)
    assert len(targets) == 3
    text = render(None, command="python -m bench --only copy --quick", copy=results)
    assert "## Moving data: copy (issue 15)" in text
    assert "| resumed |" in text
