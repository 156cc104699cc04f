"""`parlant-server run --module parlant_router.module`, through Parlant's own module loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


async def test_parlant_server_module_routes_and_shuts_down(
    tmp_path: Path, write_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from parlant.bin.server import load_modules, setup_container
    from parlant.core.journeys import JourneyStore, JourneyVectorStore
    from parlant.core.nlp.service import NLPService
    from parlant.core.tags import TagStore

    import parlant_router.module as module

    loaded = write_config(
        {
            "backends": {"files": {"type": "json", "directory": str(tmp_path / "f")}},
            "stores": {"tags": "files", "journeys": "files"},
        }
    )
    monkeypatch.setenv("PARLANT_CONFIG", str(loaded.path))
    monkeypatch.delenv("PARLANT_ENV", raising=False)

    async with setup_container() as base, load_modules(base, ["parlant_router.module"]) as (c, _):
        # parlant-server defines NLPService after modules; vector stores needed an embedder,
        # so the module provided the file's `server.nlp` (offline).
        assert type(c[NLPService]).__name__ == "OfflineNLPService"
        assert type(c[JourneyStore]) is JourneyVectorStore
        await c[TagStore].create_tag(name="from-module")
        assert module._router is not None
    assert module._router is None  # shutdown_module closed it
    assert "from-module" in (tmp_path / "f" / "tags.json").read_text()


async def test_module_reports_a_config_mistake_on_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from parlant.bin.server import setup_container

    import parlant_router.module as module

    config = tmp_path / "parlant.yaml"
    config.write_text("version: 1\nstores:\n  sesions: nowhere\n")
    monkeypatch.setenv("PARLANT_CONFIG", str(config))
    async with setup_container() as base:
        with pytest.raises(SystemExit) as exited:
            await module.configure_module(base)
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("parlant_router.module: ") and f"{config}:3:" in err
    assert len(err.splitlines()) == 1
