"""The export format: a directory any tool can read without this package.

    DIR/manifest.json
    DIR/<store>/<collection>.jsonl.gz      one document per line, as stored (gzip)

`manifest.json`::

    {
      "format": "parlant-router-export",
      "format_version": 1,
      "parlant_version": "3.3.2",
      "exported_utc": "2026-11-30T10:00:00+00:00",
      "stores": {
        "sessions": {
          "versions": ["0.9.0"],                # the store's schema version(s), from metadata
          "collections": {
            "events": {"file": "sessions/events.jsonl.gz", "documents": 100000,
                       "bytes": 61234567, "sha256_sum": "<64 hex>"},
            ...
          }
        }
      }
    }

`bytes` counts the documents' canonical JSON and `sha256_sum` is the sum modulo 2^256 of
each document's SHA-256 over it (see `digest`): order-free, so a reader can check a file
without sorting it. A store appears in the manifest once all its files are written: an
export interrupted in a store writes that store again from the start when run again.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from parlant_router.backends.json_atomic import write_atomically
from parlant_router.transfer.digest import Digest
from parlant_router.transfer.endpoints import METADATA, Document, MergeCounts
from parlant_router.transfer.errors import TransferError

FORMAT = "parlant-router-export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PAGE_DOCUMENTS = 1000


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of the export in `directory` (TransferError when it is not one)."""
    path = directory / MANIFEST
    if not directory.is_dir():
        raise TransferError(f"{directory}: no such directory")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TransferError(f"{directory}: not an export ({MANIFEST} is missing)") from None
    except (OSError, ValueError) as error:
        raise TransferError(f"{path}: unreadable ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise TransferError(f"{path}: not a {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise TransferError(
            f"{path}: format_version {manifest.get('format_version')!r}; this parlant-router "
            f"reads {FORMAT_VERSION}"
        )
    if not isinstance(manifest.get("stores"), dict):
        raise TransferError(f"{path}: 'stores' is not an object")
    return manifest


class ExportedStore:
    """One store of an export directory, read (`StoreSource`) or written
    (`StoreDestination`)."""

    def __init__(self, store: str, directory: Path, *, parlant_version: str = "") -> None:
        self.store = store
        self.directory = directory
        self.description = str(directory / store)
        self._parlant_version = parlant_version
        self._files: dict[str, gzip.GzipFile] = {}
        self._digests: dict[str, Digest] = {}
        self._ids: dict[str, set[str]] = {}
        self._versions: set[str] = set()

    # Reading --------------------------------------------------------------------------

    def _entry(self) -> dict[str, Any] | None:
        if not (self.directory / MANIFEST).exists():
            return None
        entry = read_manifest(self.directory)["stores"].get(self.store)
        return entry if isinstance(entry, dict) else None

    async def collections(self) -> Sequence[str]:
        if self._files:
            return list(self._files)
        entry = self._entry()
        return [] if entry is None else list(entry.get("collections", {}))

    async def count(self, collection: str) -> int:
        if collection in self._digests:
            return self._digests[collection].documents
        entry = self._entry()
        if entry is None or collection not in entry.get("collections", {}):
            return 0
        return int(entry["collections"][collection].get("documents", 0))

    async def pages(self, collection: str) -> AsyncIterator[list[Document]]:
        entry = self._entry()
        if entry is None or collection not in entry.get("collections", {}):
            return
        path = self.directory / str(entry["collections"][collection]["file"])
        page: list[Document] = []
        try:
            with gzip.open(path, "rt", encoding="utf-8") as lines:
                for number, line in enumerate(lines, start=1):
                    try:
                        document = json.loads(line)
                    except ValueError as error:
                        raise TransferError(
                            f"{path}:{number}: not a JSON document ({error})"
                        ) from None
                    if not isinstance(document, dict) or "id" not in document:
                        raise TransferError(f"{path}:{number}: a document needs an 'id'")
                    page.append(document)
                    if len(page) == PAGE_DOCUMENTS:
                        yield page
                        page = []
        except FileNotFoundError:
            raise TransferError(f"{path}: missing (listed in {MANIFEST})") from None
        except (OSError, EOFError) as error:
            raise TransferError(f"{path}: unreadable ({error})") from None
        if page:
            yield page

    # Writing --------------------------------------------------------------------------

    def _file(self, collection: str) -> gzip.GzipFile:
        if collection not in self._files:
            folder = self.directory / self.store
            try:
                if not self._files and folder.exists():
                    # Left by an export interrupted in this store: written again whole.
                    shutil.rmtree(folder)
                folder.mkdir(parents=True, exist_ok=True)
                # Closed by finish(): one file per collection stays open while it is written.
                self._files[collection] = gzip.GzipFile(folder / f"{collection}.jsonl.gz", "wb")
            except OSError as error:
                raise TransferError(f"{folder}: cannot write: {error.strerror or error}") from None
            self._digests[collection] = Digest()
            self._ids[collection] = set()
        return self._files[collection]

    async def write(self, collection: str, documents: Sequence[Document]) -> int:
        file = self._file(collection)
        ids, digest = self._ids[collection], self._digests[collection]
        inserted = 0
        for document in documents:
            if str(document["id"]) in ids:
                continue
            ids.add(str(document["id"]))
            file.write(json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass"))
            file.write(b"\n")
            digest.add(document)
            inserted += 1
            if collection == METADATA and document.get("version") is not None:
                self._versions.add(str(document["version"]))
        return inserted

    async def merge(self, collection: str, documents: Sequence[Document]) -> MergeCounts:
        raise TransferError(
            f"{self.directory}: an export is written whole; --merge applies to stores"
        )

    async def clear(self) -> None:
        """An export's store is always written whole (see the module docstring)."""

    async def finish(self) -> None:
        for file in self._files.values():
            file.close()
        collections = {
            name: {
                "file": f"{self.store}/{name}.jsonl.gz",
                "documents": digest.documents,
                "bytes": digest.bytes,
                "sha256_sum": digest.checksum,
            }
            for name, digest in self._digests.items()
        }
        path = self.directory / MANIFEST
        manifest: dict[str, Any] = (
            read_manifest(self.directory)
            if path.exists()
            else {"format": FORMAT, "format_version": FORMAT_VERSION, "stores": {}}
        )
        manifest["parlant_version"] = self._parlant_version
        manifest["exported_utc"] = datetime.now(timezone.utc).isoformat()
        manifest["stores"][self.store] = {
            "versions": sorted(self._versions),
            "collections": collections,
        }
        payload = json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_atomically(path, payload)
        except OSError as error:
            raise TransferError(f"{path}: cannot write: {error.strerror or error}") from None


def export_directory_problem(directory: Path) -> str | None:
    """Why `directory` cannot take an export (None: it can): a file, or a directory that
    holds something other than an export."""
    if directory.exists() and not directory.is_dir():
        return f"{directory}: exists and is not a directory"
    if directory.is_dir() and any(directory.iterdir()) and not (directory / MANIFEST).exists():
        return f"{directory}: not empty and not an export (no {MANIFEST})"
    if directory.exists() and not os.access(directory, os.W_OK):
        return f"{directory}: not writable"
    return None
