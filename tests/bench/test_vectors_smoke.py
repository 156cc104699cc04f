"""The vector stores' workload end to end at tiny sizes (bench/vectors.py).

Real `parlant-router run` servers seeded through the official client with 20 glossary terms,
5 journeys and 10 canned responses, restarted under `vector: snowflake` and under
`vector: transient`; a stored collection of 300 documents searched in process. No timing is
asserted; the invariants are: the snowflake restart embeds no document, today's rebuild
embeds every stored text, a search sends no statement, and the data is all there afterwards.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace

import pytest

from bench.parameters import QUICK
from bench.report import render, vectors_targets
from bench.vectors import SNOWFLAKE_MODE, TRANSIENT_MODE, VectorResults, run_vectors

TINY = replace(
    QUICK,
    vector_glossary_terms=20,
    vector_journeys=5,
    vector_canned_responses=10,
    vector_documents=300,
    vector_searches=40,
    quiet_seconds=0.5,
)

#: What the seeding embeds: a text per term, journey and canned response, and two per signal
#: of every third canned response (0, 3, 6 and 9 of 10).
SEEDED_TEXTS = 20 + 5 + 10 + 2 * 4


@pytest.fixture(scope="module")
def results() -> VectorResults:
    # One run serves every test here: starting the servers is the expensive part.
    started = time.perf_counter()
    outcome = asyncio.run(run_vectors(TINY))
    print(f"vectors workload (tiny): {time.perf_counter() - started:.1f} s")
    return outcome


def test_the_run_completes(results: VectorResults) -> None:
    assert results.failures == []
    assert [m.mode for m in results.modes] == [SNOWFLAKE_MODE, TRANSIENT_MODE]
    for mode in results.modes:
        assert mode.exit_statuses == [0, 0], mode
        assert mode.seed_embeddings is not None
        assert mode.seed_embeddings.document_texts == SEEDED_TEXTS


def test_a_snowflake_restart_embeds_nothing(results: VectorResults) -> None:
    stored = results.mode(SNOWFLAKE_MODE)
    assert stored is not None and stored.restart_embeddings is not None
    assert stored.restart_embeddings.document_calls == 0
    assert stored.restart_embeddings.document_texts == 0


def test_todays_rebuild_embeds_every_stored_text(results: VectorResults) -> None:
    rebuilt = results.mode(TRANSIENT_MODE)
    assert rebuilt is not None and rebuilt.restart_embeddings is not None
    assert rebuilt.restart_embeddings.document_calls > 0
    assert rebuilt.restart_embeddings.document_texts == SEEDED_TEXTS


def test_the_data_is_intact_after_each_restart(results: VectorResults) -> None:
    for mode in results.modes:
        assert mode.listed is not None
        assert (mode.listed.terms, mode.listed.journeys, mode.listed.canned_responses) == (
            20,
            5,
            10,
        ), mode.mode
        assert mode.restart_counts is not None and mode.vector_statements() > 0


def test_searches_send_no_statement(results: VectorResults) -> None:
    stored = results.search("stored (vector: snowflake)")
    assert stored is not None
    assert stored.documents == 300
    assert len(stored.statements_per_search) == TINY.vector_searches
    assert stored.max_statements() == 0
    assert stored.nonempty > 0
    assert stored.load_statements is not None and stored.load_statements > 0
    transient = results.search("Parlant's TransientVectorDatabase")
    assert transient is not None and transient.documents == 300


def test_the_report_and_the_record(results: VectorResults) -> None:
    verdicts = {t.target: t.verdict for t in vectors_targets(results)}
    assert "missed" not in verdicts.values(), verdicts
    text = render(None, command="python -m bench --only vectors --quick", vectors=results)
    assert "## Vector stores" in text and "### Targets (issue 14)" in text
    record = json.loads(json.dumps(results.record()))
    assert record["modes"][0]["restart_document_calls"] == 0
    assert record["searches"][0]["max_statements_per_search"] == 0
