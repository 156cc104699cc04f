"""check_stores in-process: probe lines for json, transient and custom backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from parlant_router.check import PROBE_PREFIX, check_stores


async def test_write_probe_leaves_nothing_behind_and_read_probe_writes_nothing(
    tmp_path: Path, write_config: Any
) -> None:
    files = tmp_path / "files"
    loaded = write_config(
        {
            "backends": {
                "files": {"type": "json", "directory": str(files)},
                "memory": {"type": "transient"},
            },
            "stores": {"customers": "files", "sessions": "memory"},
        }
    )
    read_only = await check_stores(loaded, write=False)
    assert [(r.store, r.ok) for r in read_only] == [("sessions", True), ("customers", True)]
    assert "does not exist yet" in read_only[1].detail
    assert not files.exists()

    # ... but it does say when the file could not be created.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    blocked = write_config(
        {
            "backends": {"files": {"type": "json", "directory": str(blocker / "sub")}},
            "stores": {"customers": "files"},
        }
    )
    (result,) = await check_stores(blocked, write=False)
    assert not result.ok and f"{blocker} is not a directory" in result.detail

    results = await check_stores(loaded)
    assert [(r.store, r.backend, r.ok) for r in results] == [
        ("sessions", "memory", True),
        ("customers", "files", True),
    ]
    assert PROBE_PREFIX in results[1].detail
    # The scratch collection was dropped: the file holds no probe collection.
    assert PROBE_PREFIX not in (files / "customers.json").read_text()


async def test_each_store_gets_its_own_line_and_reason(tmp_path: Path, write_config: Any) -> None:
    loaded = write_config(
        {
            "backends": {
                "good": {"type": "json", "directory": str(tmp_path / "ok")},
                "broken": {"type": "custom", "factory": "tests.router.factories:broken"},
                "missing": {"type": "custom", "factory": "no_such_module_xyz:make"},
            },
            "stores": {"sessions": "good", "customers": "broken", "tags": "missing"},
        }
    )
    results = {r.store: r for r in await check_stores(loaded)}
    assert results["sessions"].ok
    assert not results["customers"].ok
    assert "ConnectionError: the database said no" in results["customers"].detail
    assert not results["tags"].ok
    assert "cannot import module 'no_such_module_xyz'" in results["tags"].detail
    assert all("\n" not in r.detail for r in results.values())
