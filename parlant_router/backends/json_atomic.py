"""Parlant's JSON-file database, written so that a crash never leaves a truncated store.

Parlant's `JSONFileDocumentDatabase` saves by opening the store file with mode "w"
(truncating it) and then writing: a process killed in between leaves a 0-byte or cut-off
file, and Parlant reads a 0-byte file back as an empty store. `AtomicJSONFileDatabase`
keeps Parlant's in-memory collections, locks and file format, and changes what touches
the disk:

- every save writes a temporary file beside the store (``.<store>.json.<pid>.<hex>.tmp``),
  fsyncs it, `os.replace`s it over the store and fsyncs the directory, in a thread: the
  file is always one complete save, the previous one until the rename;
- a missing store file is created the same way, holding ``{}``; so a file this class
  wrote is never empty, and opening an empty, cut-off or non-object file raises
  `JsonStoreFileError` instead of starting an empty store that would overwrite it;
- temporary files of processes that died before renaming them are removed at open;
- a save that would write exactly what the file holds is skipped: Parlant saves every store
  on close, and a process that only read a store (`parlant-router check --no-write`, a
  server that served no write) must not rewrite it from an older snapshot;
- a document UTF-8 cannot encode (a lone surrogate such as ``"\\ud800"``) is refused by
  `insert_one` / `update_one` before it enters memory, with a `JsonStoreWriteError`: left
  in memory, it would make every later save of the store fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import secrets
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from parlant.adapters.db.json_file import JSONFileDocumentCollection, JSONFileDocumentDatabase
from parlant.core.loggers import Logger
from parlant.core.persistence.common import Where
from parlant.core.persistence.document_database import (
    BaseDocument,
    InsertResult,
    TDocument,
    UpdateResult,
)

from parlant_router.errors import RouterError, UnstorableInputError
from parlant_router.processes import is_running

RECOVERY = "restore it from a backup, or delete it to start the store empty"
"""What to do about a store file that cannot be read (the end of JsonStoreFileError)."""


class JsonStoreFileError(RouterError):
    """An existing store file that is empty, cut off or not a JSON object: refused at open."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(f"{path} {problem}; {RECOVERY}")


class JsonStoreWriteError(RouterError):
    """A save that did not happen; the store file keeps its previous content."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(f"cannot write {path}: {problem} (the file keeps its previous content)")


class UnencodableDocumentError(JsonStoreWriteError, UnstorableInputError):
    """A document given to insert_one/update_one that UTF-8 cannot encode: refused."""


def temporary_name(path: Path) -> str:
    """A fresh name for a temporary file of `path`: hidden, of this process, not `*.json`."""
    return f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def _temporary_pattern(path: Path) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[0-9a-f]+\.tmp")


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporary files of `path` left by processes that died mid-save; them.

    A live process's temporary file is left alone: it may be about to rename it.
    """
    pattern = _temporary_pattern(path)
    removed: list[Path] = []
    for candidate in path.parent.iterdir():
        match = pattern.fullmatch(candidate.name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid != os.getpid() and not is_running(pid):
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()
                removed.append(candidate)
    return removed


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, payload: bytes) -> None:
    """Replace `path` by a file holding `payload`, so that it is always the old or the new.

    Blocking (write, fsync, rename, fsync of the directory): run it in a thread.
    """
    temporary = path.with_name(temporary_name(path))
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            with contextlib.suppress(FileNotFoundError):
                # Keep the store's permissions (the temporary file got the umask's).
                os.fchmod(file.fileno(), path.stat().st_mode & 0o7777)
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    _fsync_directory(path.parent)


def read_store_file(path: Path) -> tuple[bytes, dict[str, Any]]:
    """The bytes of the store file `path` and the collections they hold; JsonStoreFileError
    if it is not whole."""
    raw = path.read_bytes()
    if not raw.strip():
        # What Parlant's own adapter leaves when killed mid-save; a store file holds {} at least.
        raise JsonStoreFileError(path, f"is empty ({len(raw)} bytes): a write to it was cut short")
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError
        raise JsonStoreFileError(path, f"is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise JsonStoreFileError(path, f"holds a JSON {type(data).__name__}, not an object")
    return raw, data


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=32).digest()


def _require_encodable(path: Path, document: Mapping[str, Any]) -> None:
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        raise UnencodableDocumentError(path, _unencodable(error)) from None


def _unencodable(error: UnicodeEncodeError) -> str:
    character = error.object[error.start : error.end]
    return f"a document holds text UTF-8 cannot encode ({character!r}, a lone surrogate)"


class _EncodableCollection(JSONFileDocumentCollection[TDocument]):
    """Parlant's collection, refusing a document the store file could not hold."""

    def __init__(
        self,
        database: AtomicJSONFileDatabase,
        name: str,
        schema: type[TDocument],
        data: Sequence[TDocument] | None = None,
    ) -> None:
        super().__init__(database, name, schema, data)
        self._path = database.file_path

    async def insert_one(self, document: TDocument) -> InsertResult:
        _require_encodable(self._path, document)
        return await super().insert_one(document)

    async def update_one(
        self, filters: Where, params: TDocument, upsert: bool = False
    ) -> UpdateResult[TDocument]:
        _require_encodable(self._path, params)
        return await super().update_one(filters, params, upsert)

    async def delete_where_in(self, field: str, values: Collection[str]) -> int:
        """Delete every document whose `field` is one of `values`, saving the file once
        (Parlant's `delete_one` saves it after each document)."""
        wanted = set(values)
        async with self._lock.writer_lock:
            kept = [
                d
                for d in self.documents
                if not (isinstance(d.get(field), str) and d.get(field) in wanted)
            ]
            deleted = len(self.documents) - len(kept)
            self.documents = kept
        if deleted:
            await self._database.flush()
        return deleted


class AtomicJSONFileDatabase(JSONFileDocumentDatabase):
    """Parlant's JSONFileDocumentDatabase with atomic, durable saves (see the module)."""

    def __init__(self, logger: Logger, file_path: Path) -> None:
        remove_stale_temporaries(file_path)
        if not file_path.exists():
            # Before Parlant's constructor, which would create it with a plain write_text.
            write_atomically(file_path, b"{}")
        super().__init__(logger, file_path)
        # Digest of what the file holds as far as this process knows (what it read or last
        # wrote): a digest, not a second copy of the whole store in memory.
        self._on_disk: bytes | None = None

    async def _load_raw_data(self) -> dict[str, Any]:
        raw, data = await asyncio.to_thread(read_store_file, self.file_path)
        self._on_disk = _digest(raw)
        return data

    async def _save_data(self, data: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
        # Called by Parlant under the database's writer lock: saves never overlap. The
        # text is made here, on the loop, where the collections cannot change under it.
        text = json.dumps({**self._raw_data, **data}, ensure_ascii=False, indent=2)
        try:
            payload = text.encode("utf-8")
        except UnicodeEncodeError as error:
            # Only a document loaded with an escaped lone surrogate gets this far.
            raise JsonStoreWriteError(self.file_path, _unencodable(error)) from None
        digest = _digest(payload)
        if digest == self._on_disk:
            return
        try:
            await asyncio.to_thread(write_atomically, self.file_path, payload)
        except OSError as error:
            raise JsonStoreWriteError(self.file_path, error.strerror or str(error)) from None
        self._on_disk = digest

    def _encodable(self, name: str, schema: type[TDocument]) -> _EncodableCollection[TDocument]:
        collection = self._collections[name]
        if not isinstance(collection, _EncodableCollection):
            collection = _EncodableCollection(self, name, schema, collection.documents)
            self._collections[name] = cast(JSONFileDocumentCollection[BaseDocument], collection)
        return cast(_EncodableCollection[TDocument], collection)

    async def create_collection(
        self, name: str, schema: type[TDocument]
    ) -> JSONFileDocumentCollection[TDocument]:
        await super().create_collection(name, schema)
        return self._encodable(name, schema)

    async def get_collection(
        self,
        name: str,
        schema: type[TDocument],
        document_loader: Callable[[BaseDocument], Awaitable[TDocument | None]],
    ) -> JSONFileDocumentCollection[TDocument]:
        await super().get_collection(name, schema, document_loader)
        return self._encodable(name, schema)

    async def get_or_create_collection(
        self,
        name: str,
        schema: type[TDocument],
        document_loader: Callable[[BaseDocument], Awaitable[TDocument | None]],
    ) -> JSONFileDocumentCollection[TDocument]:
        await super().get_or_create_collection(name, schema, document_loader)
        return self._encodable(name, schema)
