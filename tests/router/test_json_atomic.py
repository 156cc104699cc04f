"""AtomicJSONFileDatabase: whole files after SIGKILL, refusing cut-off files, lone surrogates."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from parlant.core.loggers import LogLevel, StdoutLogger
from parlant.core.persistence.document_database import BaseDocument, identity_loader
from parlant.core.tracer import LocalTracer

from parlant_router.backends.json_atomic import (
    RECOVERY,
    AtomicJSONFileDatabase,
    JsonStoreFileError,
    JsonStoreWriteError,
    remove_stale_temporaries,
)
from parlant_router.check import check_stores
from tests.router.json_kill_trials import run_trials

LOGGER = StdoutLogger(LocalTracer(), LogLevel.CRITICAL)


def document(id: str, text: str = "hello") -> Any:
    return {"id": id, "version": "0.1.0", "creation_utc": "2026-01-01T00:00:00Z", "text": text}


def test_sigkilled_writers_always_leave_a_whole_file_with_every_acknowledged_document(
    tmp_path: Path,
) -> None:
    seed = secrets.randbelow(10**6)
    print(f"seed {seed}")
    trials = run_trials(8, plain=False, seed=seed, directory=tmp_path, window=0.3)
    assert [t.outcome for t in trials] == ["whole"] * len(trials), (seed, trials)
    # A writer killed between writing its temporary file and renaming it leaves it behind:
    # the next open removes it (its process is dead), and nothing else.
    for trial in range(len(trials)):
        remove_stale_temporaries(tmp_path / f"trial-{trial}.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"trial-{i}.json" for i in range(len(trials))
    )


async def test_a_new_store_file_holds_an_empty_object_and_saves_keep_permissions(
    tmp_path: Path,
) -> None:
    path = tmp_path / "customers.json"
    async with AtomicJSONFileDatabase(LOGGER, path):
        assert json.loads(path.read_text()) == {}
    path.chmod(0o600)
    async with AtomicJSONFileDatabase(LOGGER, path) as database:
        collection = await database.get_or_create_collection("c", BaseDocument, identity_loader)
        await collection.insert_one(document("1"))
    assert json.loads(path.read_text())["c"] == [document("1")]
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["customers.json"]


def test_temporaries_of_live_processes_and_other_files_are_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    stale = tmp_path / f".sessions.json.{int(dead.stdout)}.0a1b2c3d.tmp"
    live = tmp_path / f".sessions.json.{os.getppid()}.0a1b2c3d.tmp"
    others = [tmp_path / ".customers.json.1.0a.tmp", tmp_path / "sessions.json.bak"]
    for file in [stale, live, *others]:
        file.write_text("{")
    assert remove_stale_temporaries(path) == [stale]
    assert sorted(tmp_path.iterdir()) == sorted([live, *others])


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is empty (0 bytes): a write to it was cut short"),
        (b'{"sessions": [{"id": "1"', "is not valid JSON"),
        (b"\xff\xfe{}", "is not valid JSON"),
        (b"[]", "holds a JSON list, not an object"),
    ],
)
async def test_a_cut_off_store_file_is_refused_and_left_as_it_is(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "sessions.json"
    path.write_bytes(content)
    with pytest.raises(JsonStoreFileError) as raised:
        async with AtomicJSONFileDatabase(LOGGER, path):
            pass
    message = str(raised.value)
    assert message.startswith(f"{path} {problem}") and message.endswith(RECOVERY)
    assert "\n" not in message
    assert path.read_bytes() == content


async def test_check_fails_an_emptied_json_store(tmp_path: Path, write_config: Any) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (files / "customers.json").write_bytes(b"")
    loaded = write_config(
        {
            "backends": {"files": {"type": "json", "directory": str(files)}},
            "stores": {"customers": "files", "tags": "files"},
        }
    )
    for write in (False, True):
        results = await check_stores(loaded, write=write)
        assert [(r.store, r.ok) for r in results] == [("customers", False), ("tags", True)]
        assert results[0].detail == (
            f"stores.customers: {files / 'customers.json'} is empty (0 bytes): "
            f"a write to it was cut short; {RECOVERY}"
        )
    assert (files / "customers.json").read_bytes() == b""


async def test_a_lone_surrogate_is_refused_before_it_reaches_memory_or_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sessions.json"
    async with AtomicJSONFileDatabase(LOGGER, path) as database:
        events = await database.get_or_create_collection("events", BaseDocument, identity_loader)
        await events.insert_one(document("1"))
        saved = path.read_bytes()
        for write, character in (
            (events.insert_one(document("2", "\ud800")), r"'\ud800'"),
            (events.update_one({"id": {"$eq": "1"}}, document("1", "a\udfffb")), r"'\udfff'"),
        ):
            with pytest.raises(JsonStoreWriteError) as raised:
                await write
            assert str(raised.value) == (
                f"cannot write {path}: a document holds text UTF-8 cannot encode "
                f"({character}, a lone surrogate) (the file keeps its previous content)"
            )
            assert path.read_bytes() == saved
        # The store still takes writes: the refused documents never entered memory.
        await events.insert_one(document("3"))
        assert [d["id"] for d in await events.find({})] == ["1", "3"]
    assert [d["text"] for d in json.loads(path.read_text())["events"]] == ["hello", "hello"]


async def test_a_loaded_lone_surrogate_fails_saves_with_one_line_and_keeps_the_file(
    tmp_path: Path,
) -> None:
    # JSON may escape a lone surrogate (Python's ensure_ascii does): it loads, it cannot save.
    path = tmp_path / "tags.json"
    path.write_text(json.dumps({"tags": [document("1", "\ud800")]}))
    before = path.read_bytes()
    database = AtomicJSONFileDatabase(LOGGER, path)
    async with database:
        tags = await database.get_collection("tags", BaseDocument, identity_loader)
        with pytest.raises(JsonStoreWriteError, match=r"'\\ud800', a lone surrogate"):
            await tags.insert_one(document("2"))
        with pytest.raises(JsonStoreWriteError):
            await database.flush()  # what closing it does, too
        assert path.read_bytes() == before
        del tags.documents[0]  # so that closing saves
    assert [d["id"] for d in json.loads(path.read_text())["tags"]] == ["2"]


async def test_a_process_that_only_read_a_store_does_not_rewrite_it_on_close(
    tmp_path: Path,
) -> None:
    # Parlant saves every store on close: a reader (`check --no-write`) closing after a
    # writer saved would otherwise put its older snapshot back over the writer's document.
    path = tmp_path / "customers.json"
    async with AtomicJSONFileDatabase(LOGGER, path) as database:
        collection = await database.get_or_create_collection("c", BaseDocument, identity_loader)
        await collection.insert_one(document("1"))
    async with AtomicJSONFileDatabase(LOGGER, path) as reader:
        read = await reader.get_or_create_collection("c", BaseDocument, identity_loader)
        assert [d["id"] for d in await read.find({})] == ["1"]
        async with AtomicJSONFileDatabase(LOGGER, path) as writer:
            written = await writer.get_or_create_collection("c", BaseDocument, identity_loader)
            await written.insert_one(document("2"))
    assert [d["id"] for d in json.loads(path.read_text())["c"]] == ["1", "2"]
