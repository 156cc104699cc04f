"""Vector stores kept in Snowflake (issue 14): what a restart embeds, and what a search costs.

- **Server part.** For each mode, ``vector: snowflake`` (the default on a snowflake backend:
  embeddings stored in ``<PREFIX>VECTORS_<COLLECTION>``) and ``vector: transient`` (the rows
  kept, every start embedding them again: today's rebuild), a real ``parlant-router run``
  server with the four vector-backed stores (journeys, glossary, canned_responses,
  capabilities) and every other store on one `SnowflakeEmulator` of its own (metered at its
  door as in bench/growth.py), and ``server.nlp: bench.counting_nlp:counting_nlp_service``,
  whose embedder logs each call. The server is seeded through HTTP with the official client
  (glossary terms, journeys, canned responses, a third of them with signals), stopped, and
  started again: the restart's document embeddings (calls and texts), its time until
  ``GET /agents`` answers 200, its statements and result rows (from launching it until none has
  arrived for ``quiet_seconds``); then the data is listed through the client and counted.
- **In-process part.** One `StoredVectorCollection` (``keep_embeddings``) over our
  `SnowflakeDocumentDatabase` on an emulator, holding ``vector_documents`` documents embedded
  by the offline embedder (256 dimensions). The rows are written in bulk (multi-row ``INSERT
  ... SELECT ... FROM VALUES`` on an unmetered connection, in the layout the collection
  writes: `VectorRow.stored`), not one ``insert_one`` each. Then the collection is opened by
  a fresh database (time and statements of the load) and searched ``vector_searches`` times
  with k = ``vector_k``, random queries and random filters: latency p50/p99 and the
  database's ``statements_sent`` before and after each search. Parlant's
  `TransientVectorDatabase` holding the same documents (inserted one by one, as the stores do
  at each start) is searched the same way for comparison.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

from lagom import Container
from parlant.adapters.vector_db.transient import TransientVectorDatabase
from parlant.client import AsyncParlantClient
from parlant.core.common import Version
from parlant.core.nlp.embedding import EmbedderFactory, NullEmbeddingCache
from parlant.core.persistence.common import ObjectId, Where
from parlant.core.persistence.vector_database import BaseDocument, VectorCollection
from parlant.core.tracer import LocalTracer

from bench.adapters import quiet_logger
from bench.counting_nlp import LOG_VARIABLE, EmbedCount, read_embed_log
from bench.growth import Counts, _Door
from bench.open_store import status_bytes
from bench.parameters import Parameters
from bench.seed import Seeder
from bench.server import free_port
from bench.server_turns import (
    PARLANT_ROUTER,
    REPOSITORY,
    SHIPPED_CONFIG,
    ServerProcess,
    ServerTurnsError,
    StoreClassifier,
    WireMeter,
    percentile,
    server_env,
    set_arguments,
    table_prefixes,
    warehouse_overrides,
)
from parlant_router.nlp.embedding import OfflineEmbedder
from parlant_router.snowflake import SnowflakeDocumentDatabase
from parlant_router.snowflake.emulator import SnowflakeEmulator
from parlant_router.snowflake.identifiers import table_name
from parlant_router.vectors.collection import StoredVectorCollection
from parlant_router.vectors.database import StoredVectorDatabase
from parlant_router.vectors.naming import VECTOR_ROWS_PREFIX as ROWS_PREFIX
from parlant_router.vectors.rows import EmbeddingKey, VectorRow, content_hash

VECTORS = "vectors"
"""This module's workload, as ``python -m bench --only`` names it."""

VECTOR_STORES = ("journeys", "glossary", "canned_responses", "capabilities")
SNOWFLAKE_MODE = "snowflake"
TRANSIENT_MODE = "transient"
MODES = (SNOWFLAKE_MODE, TRANSIENT_MODE)
COUNTING_NLP = "bench.counting_nlp:counting_nlp_service"

_COLLECTION = "bench_documents"
_PREFIX = "BENCH_VECTORS_"
_INSERT_BATCH = 250
"""Rows per bulk INSERT of the in-process part (each row about 1.5 KB of JSON)."""
_CATEGORIES = tuple(f"category-{i}" for i in range(20))
_VOCABULARY = (
    "refund order parcel delivery shipping invoice account password login plan upgrade "
    "downgrade subscription billing card payment store hours return exchange warranty repair "
    "battery screen charger cable size colour discount coupon voucher gift loyalty points "
    "address phone email support agent manager complaint feedback cancel pause resume travel "
    "flight hotel booking seat baggage lounge visa insurance claim policy premium renewal"
)
_WORDS = tuple(_VOCABULARY.split())
_RAM_DIR = Path("/dev/shm")
FILTER_KINDS = ("none", "category", "rank range", "3 categories")
"""The filters of the searches, drawn at random (`random_search`)."""


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- Figures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataCounts:
    """What the client lists after a restart."""

    terms: int
    journeys: int
    canned_responses: int


@dataclass(frozen=True)
class RestartRun:
    """One restart of a seeded server."""

    seconds: float
    """From launching the process until ``GET /agents`` answers 200."""
    embeddings: EmbedCount
    """Its embedder's calls, up to the end of its quiet period."""
    counts: Counts
    """Statements and rows at the emulator's door, from launching it until quiet."""
    peak_rss_bytes: int | None
    listed: DataCounts | None
    """What the client lists once it is quiet."""


@dataclass
class ModeFigure:
    """One ``vector:`` mode: seeding a server, then restarting it ``vector_restarts`` times."""

    mode: str
    seed_seconds: float = 0.0
    """Creating everything through HTTP (the server already started)."""
    seed_embeddings: EmbedCount | None = None
    first_start_seconds: float = 0.0
    restarts: list[RestartRun] = field(default_factory=list)
    exit_statuses: list[int] = field(default_factory=list)
    error_lines: list[str] = field(default_factory=list)

    @property
    def restart_seconds(self) -> float:
        """Mean time to ready of the restarts."""
        return statistics.fmean(r.seconds for r in self.restarts) if self.restarts else 0.0

    def restart_range(self) -> tuple[float, float]:
        seconds = [r.seconds for r in self.restarts] or [0.0]
        return min(seconds), max(seconds)

    @property
    def restart_embeddings(self) -> EmbedCount | None:
        """The most any restart embedded (documents)."""
        return max(
            (r.embeddings for r in self.restarts),
            key=lambda e: (e.document_texts, e.document_calls),
            default=None,
        )

    @property
    def restart_counts(self) -> Counts | None:
        """The counts of the restart that sent the most statements."""
        return max((r.counts for r in self.restarts), key=lambda c: c.statements, default=None)

    @property
    def restart_peak_rss_bytes(self) -> int | None:
        peaks = [r.peak_rss_bytes for r in self.restarts if r.peak_rss_bytes is not None]
        return max(peaks) if peaks else None

    @property
    def listed(self) -> DataCounts | None:
        """What the last restart listed; the first that listed something else, if any."""
        if not self.restarts:
            return None
        listings = [r.listed for r in self.restarts]
        return next((x for x in listings if x != listings[-1]), listings[-1])

    def emulator_seconds(self) -> float | None:
        """Mean time the emulator was busy during a restart."""
        if not self.restarts:
            return None
        return statistics.fmean(r.counts.wire.emulator_seconds for r in self.restarts)

    def vector_statements(self) -> int:
        """Statements of the vector stores' tables at the restart."""
        counts = self.restart_counts
        if counts is None:
            return 0
        return sum(counts.wire.by_store.get(s, 0) for s in VECTOR_STORES)


@dataclass(frozen=True)
class SearchFigure:
    """Searches of one vector collection holding ``documents`` documents."""

    name: str
    documents: int
    fill_seconds: float
    """How the collection came to hold them (see `fill`)."""
    fill: str
    searches: int
    k: int
    latencies_ms: tuple[float, ...]
    statements_per_search: tuple[int, ...]
    """``statements_sent`` after minus before each search (None: the database has none)."""
    load_seconds: float | None = None
    load_statements: int | None = None
    nonempty: int = 0
    """Searches that returned at least one document."""
    kinds: tuple[str, ...] = ()
    """The filter of each search (`FILTER_KINDS`), in the order of ``latencies_ms``."""

    def p(self, fraction: float) -> float | None:
        return percentile(self.latencies_ms, fraction)

    def max_statements(self) -> int:
        return max(self.statements_per_search, default=0)

    def by_kind(self) -> dict[str, tuple[int, float | None, float | None]]:
        """Per filter kind: searches, p50 and p99 in ms."""
        out: dict[str, tuple[int, float | None, float | None]] = {}
        for kind in FILTER_KINDS:
            values = [v for v, k in zip(self.latencies_ms, self.kinds, strict=True) if k == kind]
            if values:
                out[kind] = (len(values), percentile(values, 0.5), percentile(values, 0.99))
        return out


@dataclass
class VectorResults:
    """A whole run of this module's workload."""

    parameters: Parameters
    started: datetime
    seconds: float = 0.0
    modes: list[ModeFigure] = field(default_factory=list)
    server_seconds: float = 0.0
    searches: list[SearchFigure] = field(default_factory=list)
    search_seconds: float = 0.0
    embed_seconds: float = 0.0
    """Embedding the in-process part's documents (the offline embedder), outside its windows."""
    failures: list[str] = field(default_factory=list)

    def mode(self, name: str) -> ModeFigure | None:
        return next((m for m in self.modes if m.mode == name), None)

    def search(self, name: str) -> SearchFigure | None:
        return next((s for s in self.searches if s.name == name), None)

    def record(self) -> dict[str, Any]:
        """The figures as one JSON-serialisable record."""
        p = self.parameters
        return {
            "part": VECTORS,
            "started": self.started.isoformat(),
            "seconds": round(self.seconds, 1),
            "sizes": {
                "glossary_terms": p.vector_glossary_terms,
                "journeys": p.vector_journeys,
                "canned_responses": p.vector_canned_responses,
                "documents": p.vector_documents,
                "searches": p.vector_searches,
                "k": p.vector_k,
            },
            "modes": [
                {
                    "mode": m.mode,
                    "seed_seconds": round(m.seed_seconds, 2),
                    "seed_document_texts": m.seed_embeddings.document_texts
                    if m.seed_embeddings
                    else None,
                    "restart_seconds": round(m.restart_seconds, 2),
                    "restart_document_calls": m.restart_embeddings.document_calls
                    if m.restart_embeddings
                    else None,
                    "restart_document_texts": m.restart_embeddings.document_texts
                    if m.restart_embeddings
                    else None,
                    "restart_statements": m.restart_counts.statements if m.restart_counts else None,
                    "restart_vector_statements": m.vector_statements(),
                    "restart_rows": m.restart_counts.rows if m.restart_counts else None,
                    "restart_peak_rss_bytes": m.restart_peak_rss_bytes,
                    "listed": None if m.listed is None else vars(m.listed),
                }
                for m in self.modes
            ],
            "searches": [
                {
                    "name": s.name,
                    "documents": s.documents,
                    "fill": s.fill,
                    "fill_seconds": round(s.fill_seconds, 2),
                    "load_seconds": None if s.load_seconds is None else round(s.load_seconds, 3),
                    "load_statements": s.load_statements,
                    "searches": s.searches,
                    "k": s.k,
                    "p50_ms": _round(s.p(0.5)),
                    "p99_ms": _round(s.p(0.99)),
                    "max_statements_per_search": s.max_statements(),
                    "nonempty": s.nonempty,
                }
                for s in self.searches
            ],
            "failures": list(self.failures),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# --- Server part -----------------------------------------------------------------------------


def _mode_overrides(mode: str) -> list[str]:
    return [f"stores.{store}.vector={mode}" for store in VECTOR_STORES]


async def _gather_bounded(
    jobs: Sequence[Callable[[], Awaitable[object]]], concurrency: int
) -> None:
    semaphore = asyncio.Semaphore(max(1, concurrency))

    async def one(job: Callable[[], Awaitable[object]]) -> None:
        async with semaphore:
            await job()

    await asyncio.gather(*(one(job) for job in jobs))


def _term_words(index: int) -> str:
    rng = random.Random(index)
    return " ".join(rng.sample(_WORDS, 6))


def _signals(i: int) -> list[str]:
    """Two signals for every third canned response, none for the others."""
    if i % 3:
        return []
    return [f"signal {s} of {i}: {_term_words(40_000 + 10 * i + s)}" for s in range(2)]


def seeding_jobs(
    client: AsyncParlantClient, p: Parameters
) -> list[Callable[[], Awaitable[object]]]:
    """Glossary terms, journeys and canned responses (every third with signals), one call each."""

    def term(i: int) -> Callable[[], Awaitable[object]]:
        return lambda: client.glossary.create_term(
            name=f"term {i:05d}",
            description=f"Term {i}: {_term_words(i)}.",
            synonyms=[f"synonym {i:05d}"] if i % 2 else [],
        )

    def journey(i: int) -> Callable[[], Awaitable[object]]:
        return lambda: client.journeys.create(
            title=f"Journey {i:04d}",
            description=f"Help the customer with {_term_words(10_000 + i)}.",
            conditions=[f"The customer asks about {_term_words(20_000 + i)}"],
        )

    def canned(i: int) -> Callable[[], Awaitable[object]]:
        value = f"Response {i:04d}: {_term_words(30_000 + i)}."
        if signals := _signals(i):
            return lambda: client.canned_responses.create(value=value, fields=[], signals=signals)
        return lambda: client.canned_responses.create(value=value, fields=[])

    return [
        *(term(i) for i in range(p.vector_glossary_terms)),
        *(journey(i) for i in range(p.vector_journeys)),
        *(canned(i) for i in range(p.vector_canned_responses)),
    ]


async def seed_server(client: AsyncParlantClient, p: Parameters) -> None:
    """`seeding_jobs`, ``vector_seed_concurrency`` requests in flight."""
    await _gather_bounded(seeding_jobs(client, p), p.vector_seed_concurrency)


async def list_data(client: AsyncParlantClient) -> DataCounts:
    terms, journeys, responses = await asyncio.gather(
        client.glossary.list_terms(), client.journeys.list(), client.canned_responses.list()
    )
    return DataCounts(len(terms), len(journeys), len(responses))


@dataclass
class _ModeServers:
    """``parlant-router run`` servers of one mode, one after the other, on one emulator."""

    mode: str
    connection: Mapping[str, Any]
    door: _Door
    work: Path
    config_path: Path
    starts: int = 0
    exit_statuses: list[int] = field(default_factory=list)
    error_lines: list[str] = field(default_factory=list)

    def launch(self, embed_log: Path) -> ServerProcess:
        self.starts += 1
        port = free_port()
        overrides = [
            *warehouse_overrides(self.connection),
            f"server.port={port}",
            f"server.tool_service_port={free_port()}",
            f"server.home={self.work / f'home-{self.mode}'}",
            f"server.nlp={COUNTING_NLP}",
            *_mode_overrides(self.mode),
        ]
        env = server_env(self.connection)
        env[LOG_VARIABLE] = str(embed_log)
        # The server imports bench.counting_nlp from this checkout.
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPOSITORY), *filter(None, [env.get("PYTHONPATH")])]
        )
        return ServerProcess(
            [str(PARLANT_ROUTER), "run", "-c", str(self.config_path), *set_arguments(overrides)],
            port,
            self.work / f"server-{self.mode}-{self.starts}.log",
            env,
        )


async def _restart(servers: _ModeServers, embed_log: Path, p: Parameters) -> RestartRun:
    before = servers.door.snapshot()
    launched = time.perf_counter()
    server = servers.launch(embed_log)
    try:
        await server.wait_ready()
        seconds = time.perf_counter() - launched
        await servers.door.statements.wait_quiet(p.quiet_seconds)
        counts = servers.door.snapshot() - before
        embeddings = read_embed_log(embed_log)
        peak = status_bytes(server.process.pid, "VmHWM")
        listed = await list_data(AsyncParlantClient(base_url=server.base_url, timeout=300))
    finally:
        servers.exit_statuses.append(await server.stop())
        servers.error_lines += server.error_lines()
    return RestartRun(seconds, embeddings, counts, peak, listed)


async def measure_mode(
    mode: str,
    p: Parameters,
    work: Path,
    config_path: Path = SHIPPED_CONFIG,
    step: Callable[[str], None] = _log,
) -> ModeFigure:
    """Seed a server of ``mode`` on an emulator of its own, stop it, start it again."""
    figure = ModeFigure(mode)
    door = _Door(WireMeter(StoreClassifier(table_prefixes(config_path))))
    emulator = SnowflakeEmulator(work / f"snowflake-{mode}", wrap_app=door.wrap)
    connection = emulator.start()
    servers = _ModeServers(mode, connection, door, work, config_path)
    try:
        seed_log = work / f"embed-{mode}-seed.log"
        launched = time.perf_counter()
        server = servers.launch(seed_log)
        try:
            await server.wait_ready()
            figure.first_start_seconds = time.perf_counter() - launched
            client = AsyncParlantClient(base_url=server.base_url, timeout=300)
            before = read_embed_log(seed_log)
            seeding = time.perf_counter()
            await seed_server(client, p)
            figure.seed_seconds = time.perf_counter() - seeding
            after = read_embed_log(seed_log)
            figure.seed_embeddings = EmbedCount(
                after.document_calls - before.document_calls,
                after.document_texts - before.document_texts,
                after.query_calls - before.query_calls,
                after.query_texts - before.query_texts,
            )
            step(
                f"vectors ({mode}): seeded {p.vector_glossary_terms} terms, "
                f"{p.vector_journeys} journeys, {p.vector_canned_responses} canned responses "
                f"in {figure.seed_seconds:.1f} s ({figure.seed_embeddings.document_texts} "
                "texts embedded)"
            )
        finally:
            figure.exit_statuses.append(await server.stop())
            figure.error_lines += server.error_lines()
        for run in range(p.vector_restarts):
            figure.restarts.append(await _restart(servers, work / f"embed-{mode}-{run}.log", p))
            r = figure.restarts[-1]
            step(
                f"vectors ({mode}): restart {r.seconds:.2f} s, {r.embeddings.document_calls} "
                f"embedding calls ({r.embeddings.document_texts} texts), "
                f"{r.counts.statements} statements, listed {r.listed}"
            )
        figure.exit_statuses += servers.exit_statuses
        figure.error_lines += servers.error_lines
    finally:
        emulator.stop()
    return figure


# --- In-process part -------------------------------------------------------------------------


class BenchDocument(BaseDocument):
    """A vector document with two fields to filter on."""

    category: str
    rank: int


async def _identity(document: BaseDocument) -> BenchDocument | None:
    return cast(BenchDocument, document)


def _content(index: int) -> str:
    rng = random.Random(1_000_000 + index)
    return " ".join(rng.choices(_WORDS, k=12))


def make_document(index: int) -> BenchDocument:
    return BenchDocument(
        id=ObjectId(f"doc{index:06d}"),
        version=Version.String("0.1.0"),
        content=_content(index),
        checksum=f"c{index}",
        category=_CATEGORIES[index % len(_CATEGORIES)],
        rank=index % 100,
    )


def random_search(rng: random.Random) -> tuple[str, Where, str]:
    """A query of a few words and one of: no filter, a category, a rank range, a set;
    (the filter's kind, the filter, the query)."""
    query = " ".join(rng.sample(_WORDS, rng.randint(2, 5)))
    choice = rng.randrange(len(FILTER_KINDS))
    filters: Where
    if choice == 0:
        filters = {}
    elif choice == 1:
        filters = {"category": {"$eq": rng.choice(_CATEGORIES)}}
    elif choice == 2:
        low = rng.randrange(90)
        filters = {"$and": [{"rank": {"$gte": low}}, {"rank": {"$lt": low + 10}}]}
    else:
        filters = {"category": {"$in": rng.sample(_CATEGORIES, 3)}}
    return FILTER_KINDS[choice], filters, query


def _vector_database(db: SnowflakeDocumentDatabase) -> StoredVectorDatabase:
    tracer = LocalTracer()
    return StoredVectorDatabase(
        db,
        logger=quiet_logger(),
        tracer=tracer,
        embedder_factory=EmbedderFactory(Container()),
        store="bench",
        keep_embeddings=True,
    )


async def _open_collection(
    db: SnowflakeDocumentDatabase,
) -> StoredVectorCollection[BenchDocument]:
    collection = await _vector_database(db).get_or_create_collection(
        _COLLECTION, BenchDocument, OfflineEmbedder, _identity
    )
    return cast(StoredVectorCollection[BenchDocument], collection)


async def embedded_rows(documents: int) -> list[dict[str, Any]]:
    """The stored rows of ``documents`` documents, embedded by the offline embedder."""
    embedder = OfflineEmbedder()
    identity = f"{type(embedder).__name__}:{embedder.id}"
    rows: list[dict[str, Any]] = []
    batch = 500
    for start in range(0, documents, batch):
        docs = [make_document(i) for i in range(start, min(documents, start + batch))]
        result = await embedder.embed([d["content"] for d in docs])
        for document, vector in zip(docs, result.vectors, strict=True):
            import numpy as np

            key = EmbeddingKey(content_hash(document["content"]), identity, embedder.dimensions)
            row = VectorRow.new(document).with_embedding(key, np.array(vector, dtype=np.float32))
            rows.append(row.stored(keep_embedding=True))
    return rows


def write_rows(seeder: Seeder, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """``rows`` in multi-row INSERTs of `_INSERT_BATCH`; the statements sent."""
    statements = 0
    for start in range(0, len(rows), _INSERT_BATCH):
        batch = rows[start : start + _INSERT_BATCH]
        values = ", ".join(f"(%(i{n})s, %(v{n})s, %(c{n})s, %(d{n})s)" for n in range(len(batch)))
        params: dict[str, Any] = {}
        for n, row in enumerate(batch):
            params[f"i{n}"] = row["id"]
            params[f"v{n}"] = row["version"]
            params[f"c{n}"] = row.get("creation_utc")
            params[f"d{n}"] = json.dumps(row, separators=(",", ":"))
        seeder.execute(
            f'INSERT INTO "{table}" (ID, VERSION, CREATION_UTC, DATA) '
            f"SELECT column1, column2, column3, PARSE_JSON(column4) FROM VALUES {values}",
            params,
        )
        statements += 1
    return statements


async def _search(
    name: str,
    collection: VectorCollection[BenchDocument],
    p: Parameters,
    statements: Callable[[], int] | None,
    *,
    documents: int,
    fill: str,
    fill_seconds: float,
    load_seconds: float | None = None,
    load_statements: int | None = None,
) -> SearchFigure:
    rng = random.Random(14)
    latencies: list[float] = []
    sent: list[int] = []
    kinds: list[str] = []
    nonempty = 0
    for _ in range(p.vector_searches):
        kind, filters, query = random_search(rng)
        kinds.append(kind)
        before = statements() if statements else 0
        started = time.perf_counter()
        found = await collection.find_similar_documents(filters, query, k=p.vector_k)
        latencies.append(1000 * (time.perf_counter() - started))
        sent.append((statements() if statements else 0) - before)
        nonempty += bool(found)
    return SearchFigure(
        name=name,
        documents=documents,
        fill_seconds=fill_seconds,
        fill=fill,
        searches=p.vector_searches,
        k=p.vector_k,
        latencies_ms=tuple(latencies),
        statements_per_search=tuple(sent),
        load_seconds=load_seconds,
        load_statements=load_statements,
        nonempty=nonempty,
        kinds=tuple(kinds),
    )


async def measure_searches(
    p: Parameters,
    connection: Mapping[str, Any],
    results: VectorResults,
    step: Callable[[str], None],
) -> None:
    """Stored collection on the emulator, then Parlant's transient database, searched alike."""
    documents = p.vector_documents
    embedding = time.perf_counter()
    rows = await embedded_rows(documents)
    results.embed_seconds = time.perf_counter() - embedding
    # Create the collection's tables through the collection itself (empty), then bulk-write.
    async with SnowflakeDocumentDatabase(
        quiet_logger(), dict(connection), table_prefix=_PREFIX
    ) as db:
        await _open_collection(db)
    seeder = Seeder(connection)
    try:
        writing = time.perf_counter()
        inserts = write_rows(seeder, table_name(_PREFIX, ROWS_PREFIX + _COLLECTION), rows)
        write_seconds = time.perf_counter() - writing
    finally:
        seeder.close()
    step(f"vectors: {documents:,} rows written in {inserts} INSERTs, {write_seconds:.1f} s")
    async with SnowflakeDocumentDatabase(
        quiet_logger(), dict(connection), table_prefix=_PREFIX
    ) as db:
        before = db.statements_sent
        loading = time.perf_counter()
        collection = await _open_collection(db)
        load_seconds = time.perf_counter() - loading
        load_statements = db.statements_sent - before
        held = len(await collection.find({}))
        if held != documents:
            results.failures.append(f"stored collection holds {held} of {documents} documents")
        results.searches.append(
            await _search(
                "stored (vector: snowflake)",
                collection,
                p,
                lambda: db.statements_sent,
                documents=held,
                fill=f"bulk INSERTs ({inserts}, {_INSERT_BATCH} rows each)",
                fill_seconds=write_seconds,
                load_seconds=load_seconds,
                load_statements=load_statements,
            )
        )
    stored = results.searches[-1]
    step(
        f"vectors: stored collection loaded in {load_seconds:.2f} s ({load_statements} "
        f"statements); search p50 {stored.p(0.5):.2f} ms, p99 {stored.p(0.99):.2f} ms, "
        f"at most {stored.max_statements()} statements per search"
    )
    tracer = LocalTracer()
    transient = TransientVectorDatabase(
        quiet_logger(), tracer, EmbedderFactory(Container()), NullEmbeddingCache
    )
    memory = await transient.get_or_create_collection(
        _COLLECTION, BenchDocument, OfflineEmbedder, _identity
    )
    filling = time.perf_counter()
    for i in range(documents):
        await memory.insert_one(make_document(i))
    fill_seconds = time.perf_counter() - filling
    results.searches.append(
        await _search(
            "Parlant's TransientVectorDatabase",
            memory,
            p,
            None,
            documents=len(await memory.find({})),
            fill="insert_one each (embedding each)",
            fill_seconds=fill_seconds,
        )
    )
    figure = results.searches[-1]
    step(
        f"vectors: transient filled in {fill_seconds:.1f} s; search p50 "
        f"{figure.p(0.5):.2f} ms, p99 {figure.p(0.99):.2f} ms"
    )


# --- The workload ----------------------------------------------------------------------------


async def run_vectors(
    p: Parameters,
    *,
    config_path: Path = SHIPPED_CONFIG,
    step: Callable[[str], None] = _log,
) -> VectorResults:
    """The server part (both modes), then the in-process part."""
    results = VectorResults(p, datetime.now(timezone.utc))
    clock = time.perf_counter()
    base = str(_RAM_DIR) if _RAM_DIR.is_dir() else None
    with tempfile.TemporaryDirectory(prefix="parlant-bench-vectors-", dir=base) as directory:
        work = Path(directory)
        begun = time.perf_counter()
        for mode in MODES:
            try:
                results.modes.append(await measure_mode(mode, p, work, config_path, step))
            except (ServerTurnsError, OSError) as error:
                results.failures.append(f"{mode}: {str(error).splitlines()[0]}")
                step(f"vectors ({mode}): FAILED: {error}")
        results.server_seconds = time.perf_counter() - begun
        begun = time.perf_counter()
        emulator = SnowflakeEmulator(work / "snowflake-search")
        connection = emulator.start()
        try:
            await measure_searches(p, connection, results, step)
        finally:
            emulator.stop()
        results.search_seconds = time.perf_counter() - begun
    results.seconds = time.perf_counter() - clock
    step(f"vectors: record {json.dumps(results.record())}")
    return results
