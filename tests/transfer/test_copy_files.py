"""`copier.copy_store` between JSON store files and export directories: what moves, what is
refused, merged, replaced and resumed, and what verification catches."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from parlant_router.transfer.copier import copy_store
from parlant_router.transfer.digest import Digest, canonical_json
from parlant_router.transfer.endpoints import Document
from parlant_router.transfer.errors import TransferError
from parlant_router.transfer.export_directory import ExportedStore, read_manifest
from parlant_router.transfer.json_file import JsonFileStore
from parlant_router.transfer.merging import merge_decision

pytestmark = pytest.mark.asyncio


def customer(i: int, version: str = "0.3.0", **extra: Any) -> Document:
    return {"id": f"c{i:05d}", "version": version, "name": f"name {i} é", "n": 1.0, **extra}


def write_store(path: Path, collections: dict[str, list[Document]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(collections), encoding="utf-8")


def stored(path: Path) -> dict[str, list[Document]]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


SOURCE = {
    "metadata": [{"id": "meta_id", "version": "0.3.0"}],
    "customers": [customer(i) for i in range(2345)],
    "customer_tag_associations": [{"id": "a1", "version": "0.3.0", "customer_id": "c00001"}],
}


async def test_a_json_store_moves_whole_and_is_verified(tmp_path: Path) -> None:
    write_store(tmp_path / "a.json", SOURCE)
    outcome = await copy_store(
        JsonFileStore("customers", tmp_path / "a.json"),
        JsonFileStore("customers", tmp_path / "b.json"),
        mode="refuse",
        dry_run=False,
    )
    assert outcome.action == "copied" and outcome.verified
    assert [c.collection for c in outcome.collections][-1] == "metadata"
    assert stored(tmp_path / "b.json") == SOURCE


async def test_a_store_round_trips_through_an_export(tmp_path: Path) -> None:
    write_store(tmp_path / "a.json", SOURCE)
    exported = await copy_store(
        JsonFileStore("customers", tmp_path / "a.json"),
        ExportedStore("customers", tmp_path / "export", parlant_version="3.3.2"),
        mode="refuse",
        dry_run=False,
    )
    assert exported.verified
    manifest = read_manifest(tmp_path / "export")
    entry = manifest["stores"]["customers"]
    assert entry["versions"] == ["0.3.0"]
    customers = entry["collections"]["customers"]
    assert customers["documents"] == 2345
    # Readable without this package: gzip JSON Lines, and the checksum a reader can redo.
    lines = gzip.decompress((tmp_path / "export" / customers["file"]).read_bytes()).splitlines()
    digest = Digest()
    for line in lines:
        digest.add(json.loads(line))
    assert digest.checksum == customers["sha256_sum"] and digest.bytes == customers["bytes"]

    imported = await copy_store(
        ExportedStore("customers", tmp_path / "export"),
        JsonFileStore("customers", tmp_path / "c.json"),
        mode="refuse",
        dry_run=False,
    )
    assert imported.verified
    assert stored(tmp_path / "c.json") == SOURCE


async def test_a_destination_with_data_is_refused_then_merged_or_replaced(tmp_path: Path) -> None:
    write_store(tmp_path / "a.json", SOURCE)
    held = {
        "metadata": [{"id": "meta_id", "version": "0.3.0"}],
        "customers": [
            customer(1, version="0.4.0", name="newer here"),  # kept: newer version
            customer(2, name="changed here"),  # replaced: same version, other content
            customer(3),  # kept: the same
            customer(99999),  # not in the source: stays
        ],
    }
    write_store(tmp_path / "b.json", held)
    before = (tmp_path / "b.json").read_bytes()
    with pytest.raises(TransferError, match=r"already holds 5 document\(s\); use --merge"):
        await copy_store(
            JsonFileStore("customers", tmp_path / "a.json"),
            JsonFileStore("customers", tmp_path / "b.json"),
            mode="refuse",
            dry_run=False,
        )
    assert (tmp_path / "b.json").read_bytes() == before

    merged = await copy_store(
        JsonFileStore("customers", tmp_path / "a.json"),
        JsonFileStore("customers", tmp_path / "b.json"),
        mode="merge",
        dry_run=False,
    )
    counts = {c.collection: c.merged for c in merged.collections}
    assert counts["customers"] is not None
    assert (
        counts["customers"].inserted,
        counts["customers"].replaced,
        counts["customers"].kept,
    ) == (
        2342,
        1,
        2,
    )
    after = {d["id"]: d for d in stored(tmp_path / "b.json")["customers"]}
    assert after["c00001"]["name"] == "newer here"
    assert after["c00002"]["name"] == "name 2 é"
    assert "c99999" in after and len(after) == 2346
    assert merged.verified

    replaced = await copy_store(
        JsonFileStore("customers", tmp_path / "a.json"),
        JsonFileStore("customers", tmp_path / "b.json"),
        mode="replace",
        dry_run=False,
    )
    assert replaced.action == "replaced" and replaced.verified
    assert stored(tmp_path / "b.json") == SOURCE


async def test_a_dry_run_writes_nothing(tmp_path: Path) -> None:
    write_store(tmp_path / "a.json", SOURCE)
    outcome = await copy_store(
        JsonFileStore("customers", tmp_path / "a.json"),
        JsonFileStore("customers", tmp_path / "b.json"),
        mode="refuse",
        dry_run=True,
    )
    assert outcome.action == "would copy"
    assert {c.collection: c.source.documents for c in outcome.collections} == {
        "customers": 2345,
        "customer_tag_associations": 1,
        "metadata": 1,
    }
    assert not (tmp_path / "b.json").exists()


class RecordingDestination(JsonFileStore):
    """A JSON destination that records what it is asked to write (and can lose one)."""

    def __init__(self, store: str, path: Path, *, lose: str | None = None) -> None:
        super().__init__(store, path)
        self.asked: list[str] = []
        self._lose = lose

    async def write(self, collection: str, documents: Sequence[Document]) -> int:
        self.asked.extend(str(d["id"]) for d in documents)
        if self._lose is not None:
            documents = [d for d in documents if d["id"] != self._lose]
        return await super().write(collection, documents)


async def test_an_interrupted_copy_resumes_after_what_the_destination_holds(
    tmp_path: Path,
) -> None:
    write_store(tmp_path / "a.json", SOURCE)
    # What an interrupted copy leaves: the first 1,000 customers, no metadata.
    write_store(tmp_path / "b.json", {"customers": SOURCE["customers"][:1000]})
    destination = RecordingDestination("customers", tmp_path / "b.json")
    outcome = await copy_store(
        JsonFileStore("customers", tmp_path / "a.json"), destination, mode="refuse", dry_run=False
    )
    assert outcome.action == "resumed" and outcome.verified
    assert len(destination.asked) == 1345 + 1 + 1  # the rest of customers, the others
    assert destination.asked[0] == "c01000"
    assert stored(tmp_path / "b.json") == {
        "customers": SOURCE["customers"],
        "customer_tag_associations": SOURCE["customer_tag_associations"],
        "metadata": SOURCE["metadata"],
    }


async def test_verification_fails_when_the_destination_differs(tmp_path: Path) -> None:
    write_store(tmp_path / "a.json", SOURCE)
    outcome = await copy_store(
        JsonFileStore("customers", tmp_path / "a.json"),
        RecordingDestination("customers", tmp_path / "b.json", lose="c00007"),
        mode="refuse",
        dry_run=False,
    )
    assert not outcome.verified
    bad = [c for c in outcome.collections if c.verified is False]
    assert [c.collection for c in bad] == ["customers"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "not a Parlant JSON store file"),
        (b"[1, 2]", "not a Parlant JSON store file"),
        (b'{"customers": [1]}', "holds a non-document"),
        (b'{"customers": [{"id": "x"}', "not a Parlant JSON store file"),
    ],
)
async def test_a_malformed_store_file_is_one_line(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    (tmp_path / "a.json").write_bytes(content)
    with pytest.raises(TransferError, match=expected) as raised:
        await copy_store(
            JsonFileStore("customers", tmp_path / "a.json"),
            JsonFileStore("customers", tmp_path / "b.json"),
            mode="refuse",
            dry_run=False,
        )
    assert "\n" not in str(raised.value) and str(tmp_path / "a.json") in str(raised.value)
    assert not (tmp_path / "b.json").exists()


async def test_a_missing_source_and_a_malformed_export_are_one_line(tmp_path: Path) -> None:
    missing = JsonFileStore("customers", tmp_path / "nothing.json")
    assert await missing.collections() == []  # a destination not written yet
    with pytest.raises(TransferError, match="not an export"):
        read_manifest(tmp_path)
    (tmp_path / "e" / "customers").mkdir(parents=True)
    (tmp_path / "e" / "manifest.json").write_text(
        json.dumps(
            {
                "format": "parlant-router-export",
                "format_version": 1,
                "stores": {
                    "customers": {"collections": {"customers": {"file": "customers/c.jsonl.gz"}}}
                },
            }
        )
    )
    (tmp_path / "e" / "customers" / "c.jsonl.gz").write_bytes(
        gzip.compress(b'{"id": "a"}\n{oops\n')
    )
    with pytest.raises(TransferError, match=r"c\.jsonl\.gz:2: not a JSON document"):
        await _read_all(ExportedStore("customers", tmp_path / "e"))


async def _read_all(store: JsonFileStore | ExportedStore) -> list[Document]:
    documents: list[Document] = []
    for name in await store.collections():
        pages: AsyncIterator[list[Document]] = store.pages(name)
        async for page in pages:
            documents.extend(page)
    return documents


def test_merge_decisions() -> None:
    old, new = customer(1, version="0.2.0"), customer(1, version="0.10.0")
    assert merge_decision(None, new) == "insert"
    assert merge_decision(old, new) == "replace"  # 0.10.0 is newer than 0.2.0 (not by text)
    assert merge_decision(new, old) == "keep"
    assert merge_decision(new, dict(new)) == "keep"
    assert merge_decision(new, {**new, "name": "other"}) == "replace"


def test_canonical_json_ignores_key_order_and_integral_floats() -> None:
    assert canonical_json({"b": 1.0, "a": [2.0, 2.5]}) == canonical_json({"a": [2, 2.5], "b": 1})
