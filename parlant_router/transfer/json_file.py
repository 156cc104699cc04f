"""A store kept in one of Parlant's JSON files (`{"<collection>": [documents...], ...}`).

As a source the file is parsed one document at a time (ijson), so memory stays flat
whatever its size. As a destination the documents are gathered in memory and the file is
written once, atomically, by `finish` (as Parlant's own JSON adapter holds the whole file):
a copy interrupted before that leaves the file as it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import BinaryIO

import ijson

from parlant_router.backends.json_atomic import write_atomically
from parlant_router.transfer.endpoints import Document, MergeCounts
from parlant_router.transfer.errors import TransferError
from parlant_router.transfer.merging import merge_decision

PAGE_DOCUMENTS = 1000


class JsonFileStore:
    """One store's JSON file, read (`StoreSource`) or written (`StoreDestination`)."""

    def __init__(self, store: str, path: Path) -> None:
        self.store = store
        self.path = path
        self.description = str(path)
        self._written: dict[str, list[Document]] | None = None

    # Reading --------------------------------------------------------------------------

    def _open(self) -> BinaryIO:
        try:
            return self.path.open("rb")
        except FileNotFoundError:
            raise TransferError(f"{self.path}: no such file") from None
        except OSError as error:
            raise TransferError(f"{self.path}: cannot read: {error.strerror or error}") from None

    def _malformed(self, error: Exception) -> TransferError:
        # The parser's message may point at the spot over several lines: its first says why.
        reason = (str(error).strip().splitlines() or ["empty"])[0]
        return TransferError(f"{self.path}: not a Parlant JSON store file ({reason})")

    async def collections(self) -> Sequence[str]:
        if self._written is not None:
            return [name for name, documents in self._written.items() if documents]
        if not self.path.exists():
            return []
        names: list[str] = []
        with self._open() as file:
            try:
                for prefix, event, value in ijson.parse(file):
                    if prefix == "" and event == "map_key":
                        names.append(str(value))
                    elif prefix == "" and event not in ("start_map", "map_key", "end_map"):
                        raise self._malformed(ValueError("the file is not a JSON object"))
            except ijson.JSONError as error:
                raise self._malformed(error) from None
        return names

    async def count(self, collection: str) -> int:
        count = 0
        async for page in self.pages(collection):
            count += len(page)
        return count

    async def pages(self, collection: str) -> AsyncIterator[list[Document]]:
        if self._written is not None:
            documents = self._written.get(collection, [])
            for start in range(0, len(documents), PAGE_DOCUMENTS):
                yield documents[start : start + PAGE_DOCUMENTS]
            return
        if not self.path.exists():
            return
        with self._open() as file:
            page: list[Document] = []
            try:
                for document in ijson.items(file, f"{collection}.item", use_float=True):
                    if not isinstance(document, dict) or "id" not in document:
                        raise self._malformed(
                            ValueError(f"collection '{collection}' holds a non-document")
                        )
                    page.append(document)
                    if len(page) == PAGE_DOCUMENTS:
                        yield page
                        page = []
                        await asyncio.sleep(0)
            except ijson.JSONError as error:
                raise self._malformed(error) from None
            if page:
                yield page

    # Writing --------------------------------------------------------------------------

    async def _documents(self) -> dict[str, list[Document]]:
        if self._written is None:
            held: dict[str, list[Document]] = {}
            for name in await self.collections():
                held[name] = [d async for page in self.pages(name) for d in page]
            self._written = held
        return self._written

    async def write(self, collection: str, documents: Sequence[Document]) -> int:
        held = (await self._documents()).setdefault(collection, [])
        ids = {str(d["id"]) for d in held}
        inserted = 0
        for document in documents:
            if str(document["id"]) not in ids:
                held.append(document)
                ids.add(str(document["id"]))
                inserted += 1
        return inserted

    async def merge(self, collection: str, documents: Sequence[Document]) -> MergeCounts:
        held = (await self._documents()).setdefault(collection, [])
        positions = {str(d["id"]): i for i, d in enumerate(held)}
        counts = MergeCounts()
        for document in documents:
            position = positions.get(str(document["id"]))
            decision = merge_decision(None if position is None else held[position], document)
            if decision == "insert":
                positions[str(document["id"])] = len(held)
                held.append(document)
                counts += MergeCounts(inserted=1)
            elif decision == "replace":
                assert position is not None
                held[position] = document
                counts += MergeCounts(replaced=1)
            else:
                counts += MergeCounts(kept=1)
        return counts

    async def clear(self) -> None:
        self._written = {}

    async def finish(self) -> None:
        if self._written is None:
            return
        import json

        payload = json.dumps(self._written, ensure_ascii=False, indent=2).encode(
            "utf-8", "surrogatepass"
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(write_atomically, self.path, payload)
        except OSError as error:
            raise TransferError(f"{self.path}: cannot write: {error.strerror or error}") from None


def parlant_home_files() -> dict[str, str]:
    """The JSON file of each store in a plain `parlant-server` home (`PARLANT_HOME`)."""
    return {
        "agents": "agents.json",
        "context_variables": "context_variables.json",
        "customers": "customers.json",
        "evaluations": "evaluations.json",
        "tags": "tags.json",
        "guidelines": "guidelines.json",
        "guideline_tool_associations": "guideline_tool_associations.json",
        "relationships": "relationships.json",
        "sessions": "sessions.json",
        "glossary": "glossary_tags.json",
        "canned_responses": "canned_responses.json",
        "journeys": "journey_associations.json",
        "capabilities": "capabilities.json",
    }
