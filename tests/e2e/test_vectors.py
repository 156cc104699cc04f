"""Vector-backed stores kept in their own Snowflake tables, through real server processes.

`vector: snowflake` (the default on a snowflake backend) keeps each vector collection's
documents and embeddings in `<PREFIX>VECTORS_<COLLECTION>`: canned responses with signals
are stored whole, a restart embeds nothing, another embedding model re-embeds once, and
replicas (`server.replicas: many`) follow each other's vector writes on the change feed.
The servers run `bench.counting_nlp` (the offline NLP service whose embedder appends a line
per call to `PARLANT_ROUTER_EMBED_LOG`), so what a start embeds is counted across processes.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import snowflake.connector
import yaml
from parlant.client import ParlantClient
from parlant.client.core.api_error import ApiError

from bench.counting_nlp import EmbedCount, read_embed_log
from tests.e2e.conftest import BIN, Harness, ServerProcess, free_port
from tests.e2e.test_replicas import (  # noqa: F401 - shared_emulator is a fixture
    client,
    shared_emulator,
    start_replica,
    start_replicas,
)

SHIPPED = Path(__file__).resolve().parents[2] / "parlant.yaml"
COUNTING_NLP = "bench.counting_nlp:counting_nlp_service"
VECTOR_STORES = ("journeys", "glossary", "canned_responses", "capabilities")
STALENESS = 1.0
#: How long a replica may take to show another's write (the bound, statements, HTTP).
FOLLOW_SECONDS = 10.0
EMBEDDED = re.compile(
    r"Embedded (\d+) vector\(s\) of '(\w+)' \((\d+) text\(s\) sent to the embedder; ([^)]*)\)"
)

T = TypeVar("T")


# Servers -------------------------------------------------------------------------------------


class Starts:
    """Starts of one config, each with its own embed log (`embeds(n)` reads start n's)."""

    def __init__(self, harness: Harness, argv: list[str], port: int) -> None:
        self.harness = harness
        self.argv = argv
        self.port = port
        self.logs: list[Path] = []

    def start(self, model: str | None = None) -> ServerProcess:
        log = self.harness.tmp_path / f"embed-{len(self.logs) + 1}.log"
        self.logs.append(log)
        env = {"PARLANT_ROUTER_EMBED_LOG": str(log), "PARLANT_ROUTER_EMBED_MODEL": model or ""}
        return self.harness.start(self.argv, self.port, env)

    def embeds(self, n: int) -> EmbedCount:
        return read_embed_log(self.logs[n - 1])


def shipped_starts(harness: Harness, emulator: Path) -> Starts:
    """The shipped parlant.yaml (every store on the snowflake emulator), redirected to tmp."""
    port = free_port()
    argv = [
        str(BIN / "parlant-router"),
        "run",
        "-c",
        str(SHIPPED),
        "--set",
        f"server.home={harness.tmp_path / 'home'}",
        "--set",
        f"backends.warehouse.emulator={emulator}",
        "--set",
        f"server.port={port}",
        "--set",
        f"server.tool_service_port={free_port()}",
        "--set",
        f"server.nlp={COUNTING_NLP}",
    ]
    return Starts(harness, argv, port)


def config_starts(harness: Harness, document: dict[str, Any]) -> Starts:
    """A parlant.yaml of `document` (counting NLP) started with `parlant-router run`."""
    config, port = harness.config(document)
    body = yaml.safe_load(config.read_text())
    body["server"]["nlp"] = COUNTING_NLP
    config.write_text(yaml.safe_dump(body))
    return Starts(harness, [str(BIN / "parlant-router"), "run", "-c", str(config)], port)


def warehouse(emulator: Path, vector: str | None = None) -> dict[str, Any]:
    """Every vector-backed store on a snowflake emulator backend, as the shipped file."""
    shipped = yaml.safe_load(SHIPPED.read_text())["stores"]
    stores = {}
    for store in VECTOR_STORES:
        route = dict(shipped[store])
        if vector is not None:
            route["vector"] = vector
        stores[store] = route
    return {
        "backends": {"warehouse": {"type": "snowflake", "emulator": str(emulator)}},
        "stores": stores,
    }


def stop(server: ServerProcess) -> None:
    assert server.stop(signal.SIGTERM) == 0, server.tail()


def embedded_lines(server: ServerProcess) -> list[tuple[int, str, int, str]]:
    """(vectors, collection, texts, reason) of each `Embedded ...` line of the server's log."""
    text = server.log.read_text(errors="replace")
    return [(int(n), c, int(t), r) for n, c, t, r in EMBEDDED.findall(text)]


def until(probe: Callable[[], T], accept: Callable[[T], bool], seconds: float) -> T:
    """Call `probe` until `accept` holds of its result (the last result after `seconds`)."""
    deadline = time.monotonic() + seconds
    while True:
        result = probe()
        if accept(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


# The emulator's tables, read beside the server ----------------------------------------------


def table_rows(emulator: Path, table: str) -> list[dict[str, Any]]:
    """DATA of every row of `table`, through the emulator's server (the running server
    process's, attached to, or this process's own when none runs)."""
    from parlant_router.snowflake import SnowflakeEmulator

    emulator_server = SnowflakeEmulator(emulator)
    try:
        connection = snowflake.connector.connect(**emulator_server.start())
        try:
            cursor = connection.cursor()
            cursor.execute(f"SELECT DATA FROM {table}")
            return [json.loads(data) for (data,) in cursor.fetchall()]
        finally:
            connection.close()
    finally:
        emulator_server.stop()


def rows_of(rows: list[dict[str, Any]], vector_id: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["vector_document_id"] == vector_id]


# Entities ------------------------------------------------------------------------------------


def populate(c: ParlantClient) -> None:
    """Glossary terms, journeys with conditions and canned responses with signals."""
    c.glossary.create_term(name="Invoice", description="A bill sent after an order")
    c.glossary.create_term(name="Refund", description="Money paid back", synonyms=["payback"])
    sku = c.glossary.create_term(name="SKU", description="Stock code", synonyms=["item code"])
    c.glossary.update_term(sku.id, description="Stock keeping unit")
    returns = c.journeys.create(
        title="Return an item",
        description="Guide the customer through a return",
        conditions=["The customer wants to return an item"],
    )
    c.journeys.update(returns.id, title="Return or exchange an item")
    c.journeys.create(
        title="Reset a password",
        description="Help the customer get back into the account",
        conditions=["The customer forgot the password", "The customer is locked out"],
    )
    c.canned_responses.create(
        value="Your order ships within two days.",
        fields=[],
        signals=["when will my order ship", "shipping time"],
    )
    c.canned_responses.create(value="Thanks for waiting.", fields=[])


def snapshot(c: ParlantClient) -> dict[str, list[dict[str, Any]]]:
    """Every term, journey and canned response (ids and contents), in id order."""

    def dumped(items: Any) -> list[dict[str, Any]]:
        return sorted((i.model_dump(mode="json") for i in items), key=lambda d: d["id"])

    return {
        # The glossary's listing is its vector collection, in insertion order.
        "term_order": [t.id for t in c.glossary.list_terms()],
        "terms": dumped(c.glossary.list_terms()),
        "journeys": dumped(c.journeys.list()),
        "canned_responses": dumped(c.canned_responses.list()),
    }


# 1. Canned responses with signals ------------------------------------------------------------


def test_canned_responses_with_signals_on_the_shipped_config(
    harness: Harness, tmp_path: Path
) -> None:
    emulator = tmp_path / "sf"
    starts = shipped_starts(harness, emulator)
    server = starts.start()
    c = client(server)

    kept = c.canned_responses.create(
        value="Your order ships within two days.",
        fields=[],
        signals=["when will my order ship", "shipping time"],
    )
    changed = c.canned_responses.create(
        value="We are sorry for the delay.",
        fields=[],
        signals=["my order is late", "where is my package"],
    )
    assert kept.signals == ["when will my order ship", "shipping time"]
    assert {r.id for r in c.canned_responses.list()} == {kept.id, changed.id}
    assert c.canned_responses.retrieve(kept.id).signals == kept.signals

    table = "PARLANT_CANNED_RESPONSES_VECTORS_CANNED_RESPONSES"
    rows = table_rows(emulator, table)
    # One vector document for the value and one per signal, all under the response's id.
    assert sorted(r["content"] for r in rows_of(rows, kept.id)) == sorted(
        [kept.value, *kept.signals]
    )
    assert len(rows_of(rows, changed.id)) == 3
    assert all(r.get("vector_embedding") for r in rows), "a vector row stored without its embedding"

    # Parlant 3.3's HTTP API updates a canned response's value (its signals are kept: the
    # update DTO has no `signals`); the vector documents are written again.
    updated = c.canned_responses.update(changed.id, value="We are very sorry for the delay.")
    assert updated.value == "We are very sorry for the delay."
    assert updated.signals == changed.signals
    assert c.canned_responses.retrieve(changed.id).value == updated.value
    assert sorted(r["content"] for r in rows_of(table_rows(emulator, table), changed.id)) == sorted(
        [updated.value, *changed.signals]
    )

    c.canned_responses.delete(changed.id)
    assert [r.id for r in c.canned_responses.list()] == [kept.id]
    assert rows_of(table_rows(emulator, table), changed.id) == []
    stop(server)

    server = starts.start()
    c = client(server)
    assert [r.id for r in c.canned_responses.list()] == [kept.id]
    again = c.canned_responses.retrieve(kept.id)
    assert (again.value, again.signals) == (kept.value, kept.signals)
    with pytest.raises(ApiError) as missing:
        c.canned_responses.retrieve(changed.id)
    assert missing.value.status_code == 404
    assert starts.embeds(2).document_calls == 0
    stop(server)


# 2. A restart embeds nothing ------------------------------------------------------------------


def test_restart_embeds_nothing_and_lists_the_same(harness: Harness, tmp_path: Path) -> None:
    starts = config_starts(harness, warehouse(tmp_path / "sf"))
    first = starts.start()
    populate(client(first))
    before = snapshot(client(first))
    stop(first)
    assert starts.embeds(1).document_calls > 0, "the counting embedder logged nothing"

    second = starts.start()
    after = snapshot(client(second))
    assert after == before
    assert starts.embeds(2).document_calls == 0, starts.logs[1].read_text()
    assert "Embedded " not in second.log.read_text(errors="replace"), second.tail()
    stop(second)


# 3. Another embedding model re-embeds once ---------------------------------------------------


def test_another_embedder_embeds_once(harness: Harness, tmp_path: Path) -> None:
    starts = config_starts(harness, warehouse(tmp_path / "sf"))
    first = starts.start()
    populate(client(first))
    before = snapshot(client(first))
    stop(first)

    second = starts.start(model="other")
    assert snapshot(client(second)) == before
    embeds = starts.embeds(2)
    lines = embedded_lines(second)
    assert embeds.document_texts > 0
    # Each collection sent its distinct contents once; the log says what was sent.
    assert sum(texts for _, _, texts, _ in lines) == embeds.document_texts, lines
    glossary = [line for line in lines if line[1] == "glossary"]
    assert len(glossary) == 1, lines
    vectors, _, texts, reason = glossary[0]
    assert (vectors, texts) == (3, 3)
    assert "stored from CountingEmbedder:offline/hashed-ngrams, now " in reason
    assert "now CountingEmbedder:offline/hashed-ngrams+other" in reason
    canned = [line for line in lines if line[1] == "canned_responses"]
    assert [(v, t) for v, t, *_ in [(line[0], line[2]) for line in canned]] == [(4, 4)], lines
    stop(second)

    third = starts.start(model="other")
    assert snapshot(client(third)) == before
    assert starts.embeds(3).document_calls == 0, starts.logs[2].read_text()
    assert "Embedded " not in third.log.read_text(errors="replace"), third.tail()
    stop(third)


# 4. vector: transient on a snowflake backend ---------------------------------------------------


def test_transient_vectors_on_snowflake_embed_at_every_start(
    harness: Harness, tmp_path: Path
) -> None:
    starts = config_starts(harness, warehouse(tmp_path / "sf", vector="transient"))
    first = starts.start()
    populate(client(first))
    before = snapshot(client(first))
    stop(first)

    for n in (2, 3):
        server = starts.start()
        assert snapshot(client(server)) == before
        assert starts.embeds(n).document_texts > 0, f"start {n} embedded nothing"
        glossary = [line for line in embedded_lines(server) if line[1] == "glossary"]
        assert [line[0] for line in glossary] == [3], server.tail()
        assert "kept in memory only" in glossary[0][3]
        stop(server)

    rows = table_rows(tmp_path / "sf", "PARLANT_GLOSSARY_VECTORS_GLOSSARY")
    assert len(rows) == 3 and not any("vector_embedding" in r for r in rows), rows


# 5. Mixed setups ------------------------------------------------------------------------------


def test_snowflake_vectors_on_a_json_backend_are_refused(harness: Harness, tmp_path: Path) -> None:
    config, _ = harness.config(
        {
            "backends": {"files": {"type": "json", "directory": str(tmp_path / "json")}},
            "stores": {"glossary": {"backend": "files", "vector": "snowflake"}},
        }
    )
    line_of_vector = next(
        n
        for n, text in enumerate(config.read_text().splitlines(), start=1)
        if text.strip().startswith("vector:")
    )
    for command in ("routes", "run"):
        result = harness.cli(command, "-c", str(config))
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"{config}:{line_of_vector}:"), lines[0]
        assert "stores.glossary.vector" in lines[0], lines[0]


def test_json_documents_with_transient_vectors_survive_a_restart(
    harness: Harness, tmp_path: Path
) -> None:
    starts = config_starts(
        harness,
        {
            "backends": {"files": {"type": "json", "directory": str(tmp_path / "json")}},
            "stores": {"glossary": "files"},
        },
    )
    first = starts.start()
    c = client(first)
    c.glossary.create_term(name="Invoice", description="A bill sent after an order")
    c.glossary.create_term(name="Refund", description="Money paid back", synonyms=["payback"])
    before = snapshot(c)["terms"]
    stop(first)

    second = starts.start()
    assert snapshot(client(second))["terms"] == before
    assert starts.embeds(2).document_texts >= 2
    stop(second)


# 6. Replicas follow each other's vector writes --------------------------------------------


def replicas_config(harness: Harness, emulator: Path, tmp_path: Path) -> Path:
    config, _ = harness.config(
        {
            "server": {
                "nlp": "offline",
                "replicas": "many",
                "max_staleness": STALENESS,
                "home": str(tmp_path / "home"),
            },
            "backends": {"warehouse": {"type": "snowflake", "emulator": str(emulator)}},
            # replicas: many needs the sessions (and so every store) on the warehouse.
            "stores": yaml.safe_load(SHIPPED.read_text())["stores"],
        }
    )
    return config


def test_replicas_start_together_on_an_empty_warehouse(
    harness: Harness,
    shared_emulator: Path,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    """Each vector store writes its version metadata (ids `version`, `<Store>_version`) at
    its first start: replicas starting at once must not collide on those ids."""
    config = replicas_config(harness, shared_emulator, tmp_path)
    servers = start_replicas(harness, config, ["a", "b", "c"])
    for server in servers:
        assert client(server).glossary.list_terms() == []
        stop(server)


def test_replicas_follow_vector_writes(
    harness: Harness,
    shared_emulator: Path,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    config = replicas_config(harness, shared_emulator, tmp_path)
    # One after the other: replicas starting together on an empty warehouse may collide
    # (see test_replicas_start_together_on_an_empty_warehouse).
    a = start_replica(harness, config, "a")
    b = start_replica(harness, config, "b")
    on_a, on_b = client(a), client(b)

    # Control: b reads its glossary before a writes, so b's vector collection is loaded in
    # memory; only the change feed can tell it of a's term.
    assert on_b.glossary.list_terms() == []

    term = on_a.glossary.create_term(name="Invoice", description="A bill sent after an order")
    seen = until(
        on_b.glossary.list_terms, lambda ts: [t.id for t in ts] == [term.id], FOLLOW_SECONDS
    )
    assert [t.id for t in seen] == [term.id], f"b does not list a's term: {seen}"
    assert seen[0].description == "A bill sent after an order"

    on_a.glossary.update_term(term.id, description="A bill for an order, sent by email")
    seen = until(
        on_b.glossary.list_terms,
        lambda ts: [t.description for t in ts] == ["A bill for an order, sent by email"],
        FOLLOW_SECONDS,
    )
    assert [t.description for t in seen] == ["A bill for an order, sent by email"], seen

    on_b.glossary.delete_term(term.id)
    left = until(on_a.glossary.list_terms, lambda ts: ts == [], FOLLOW_SECONDS)
    assert left == [], f"a still lists the term b deleted: {left}"

    # Canned responses with signals: several vector documents under one id. b creates, a
    # updates (its vector documents are deleted and written again under new row keys), b
    # deletes: b must have followed a's update, or its delete would miss a's new rows.
    canned = on_b.canned_responses.create(
        value="Your order ships within two days.", fields=[], signals=["shipping time"]
    )
    seen_canned = until(
        on_a.canned_responses.list, lambda rs: [r.id for r in rs] == [canned.id], FOLLOW_SECONDS
    )
    assert [r.id for r in seen_canned] == [canned.id]
    # a's canned responses list is its document collection; its vector collection learns of
    # b's rows on the change feed, within the bound (not observable over HTTP: wait it out).
    # Without this wait a's update misses b's vector rows (see
    # test_an_update_right_after_another_replicas_create_leaves_no_vector_rows_behind).
    time.sleep(2 * STALENESS)
    on_a.canned_responses.update(canned.id, value="Your order ships tomorrow.")
    value_on_b = until(
        lambda: on_b.canned_responses.retrieve(canned.id).value,
        lambda v: v == "Your order ships tomorrow.",
        FOLLOW_SECONDS,
    )
    assert value_on_b == "Your order ships tomorrow."
    table = "PARLANT_CANNED_RESPONSES_VECTORS_CANNED_RESPONSES"
    contents = sorted(r["content"] for r in table_rows(shared_emulator, table))
    assert contents == ["Your order ships tomorrow.", "shipping time"]
    on_b.canned_responses.delete(canned.id)
    assert until(on_a.canned_responses.list, lambda rs: rs == [], FOLLOW_SECONDS) == []
    left_rows = table_rows(shared_emulator, table)
    assert left_rows == [], f"vector rows left after the delete on b: {left_rows}"
    for server in (a, b):
        stop(server)


def test_an_update_right_after_another_replicas_create_leaves_no_vector_rows_behind(
    harness: Harness,
    shared_emulator: Path,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    """b creates a canned response with a signal; a reads it and updates it at once. The
    update replaces the response's vector documents: the stored rows must be the new ones
    only, whether or not a's vector collection had heard of b's rows yet."""
    config = replicas_config(harness, shared_emulator, tmp_path)
    a = start_replica(harness, config, "a")
    b = start_replica(harness, config, "b")
    on_a, on_b = client(a), client(b)
    # a has not listed canned responses yet: its first list reads the table.

    canned = on_b.canned_responses.create(
        value="Your order ships within two days.", fields=[], signals=["shipping time"]
    )
    until(lambda: [r.id for r in on_a.canned_responses.list()], lambda ids: ids != [], 10.0)
    on_a.canned_responses.update(canned.id, value="Your order ships tomorrow.")
    table = "PARLANT_CANNED_RESPONSES_VECTORS_CANNED_RESPONSES"
    contents = sorted(r["content"] for r in table_rows(shared_emulator, table))
    assert contents == ["Your order ships tomorrow.", "shipping time"], contents
    for server in (a, b):
        stop(server)


# 7. The mirror layout of earlier versions ----------------------------------------------------


def write_legacy_glossary(emulator: Path, terms: list[dict[str, str]]) -> None:
    """PARLANT_GLOSSARY_VECTORS_GLOSSARY as the previous version left it: each term's vector
    document, keyed by the term's id and without embedding (plus the glossary's metadata)."""
    from parlant.core.common import md5_checksum
    from parlant.core.loggers import LogLevel, StdoutLogger
    from parlant.core.tracer import LocalTracer

    from parlant_router.snowflake import SnowflakeDocumentDatabase, SnowflakeEmulator

    async def identity(document: Any) -> Any:
        return document

    async def write(params: dict[str, Any]) -> None:
        logger = StdoutLogger(LocalTracer(), LogLevel.WARNING)
        database = SnowflakeDocumentDatabase(
            logger, connection_params=params, table_prefix="PARLANT_GLOSSARY_"
        )
        async with database:
            mirror = await database.get_or_create_collection(
                "vectors_glossary",
                dict,
                identity,  # type: ignore[arg-type]
            )
            for term in terms:
                synonyms = term.get("synonyms", "")
                content = f"{term['name']}{', ' + synonyms if synonyms else ''}: "
                content += term["description"]
                await mirror.insert_one(
                    {
                        "id": term["id"],
                        "version": "0.2.0",
                        "content": content,
                        "checksum": md5_checksum(content),
                        "creation_utc": "2026-01-02T03:04:05.000000+00:00",
                        "name": term["name"],
                        "description": term["description"],
                        "synonyms": synonyms,
                    }
                )
            metadata = await database.get_or_create_collection(
                "metadata",
                dict,
                identity,  # type: ignore[arg-type]
            )
            await metadata.insert_one(
                {
                    "id": "legacyMeta01",
                    "version": "0.2.0",
                    "creation_utc": "2026-01-02T03:04:05.000000+00:00",
                }
            )

    with SnowflakeEmulator(emulator) as params:
        asyncio.run(write(params))


def test_mirror_documents_of_earlier_versions_are_embedded_once(
    harness: Harness, tmp_path: Path
) -> None:
    emulator = tmp_path / "sf"
    terms = [
        {"id": "p4YF0ufiDH", "name": "Invoice", "description": "A bill", "synonyms": "bill"},
        {"id": "wjbaGElRpL", "name": "Refund", "description": "Money back", "synonyms": ""},
    ]
    write_legacy_glossary(emulator, terms)
    starts = config_starts(harness, warehouse(emulator))

    first = starts.start()
    listed = snapshot(client(first))["terms"]
    assert [(t["id"], t["name"], t["description"], t["synonyms"]) for t in listed] == [
        ("p4YF0ufiDH", "Invoice", "A bill", ["bill"]),
        ("wjbaGElRpL", "Refund", "Money back", []),
    ]
    glossary = [line for line in embedded_lines(first) if line[1] == "glossary"]
    assert [(v, t) for v, _, t, _ in glossary] == [(2, 2)], first.tail()
    assert "stored without an embedding" in glossary[0][3]
    assert starts.embeds(1).document_texts == 2
    stop(first)

    rows = table_rows(emulator, "PARLANT_GLOSSARY_VECTORS_GLOSSARY")
    assert sorted(r["vector_document_id"] for r in rows) == ["p4YF0ufiDH", "wjbaGElRpL"]
    assert all(r.get("vector_embedding") for r in rows), rows

    second = starts.start()
    assert snapshot(client(second))["terms"] == listed
    assert starts.embeds(2).document_calls == 0, starts.logs[1].read_text()
    assert "Embedded " not in second.log.read_text(errors="replace"), second.tail()
    stop(second)
