"""Fixtures for the router tests: a Parlant container as p.Server hands it over, and configs.

Parlant binds PARLANT_HOME when it is first imported; this directory's tests bind it to a
temporary directory before they import Parlant.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from parlant_router.config.loading import LoadedConfig, load_config
from parlant_router.nlp import bind_parlant_home

bind_parlant_home(Path(tempfile.mkdtemp(prefix="parlant-router-tests-home-")))


@asynccontextmanager
async def routed_container(
    loaded: LoadedConfig, *, define_nlp: bool = True
) -> AsyncIterator[tuple[Any, Any]]:
    """(router, container) as p.Server would see them: Parlant's container, routed.

    `define_nlp=False` mimics `parlant-server --module`, where the NLP service is defined
    only after modules have configured the container.
    """
    from parlant.bin.server import setup_container
    from parlant.core.nlp.service import NLPService

    from parlant_router.nlp import OfflineNLPService
    from parlant_router.router import Router

    async with setup_container() as base:
        if define_nlp:
            base[NLPService] = OfflineNLPService.from_container(base)  # type: ignore[type-abstract]
        async with Router(loaded) as router:
            container = await router.configure_container(base)
            yield router, container


WriteConfig = Callable[..., LoadedConfig]


@pytest.fixture
def write_config(tmp_path: Path) -> WriteConfig:
    """Write a parlant.yaml from a dict into tmp_path and load it (overrides allowed)."""

    def write(document: dict[str, Any], *, overrides: tuple[str, ...] = ()) -> LoadedConfig:
        path = tmp_path / "parlant.yaml"
        body = {"version": 1, "server": {"home": str(tmp_path / "home")}, **document}
        path.write_text(yaml.safe_dump(body))
        return load_config(path, overrides=overrides)

    return write


@pytest.fixture
def routed() -> Callable[..., Any]:
    """`routed_container` as a fixture (test modules do not import conftest)."""
    return routed_container
