"""Fixtures of the config tests: a scratch directory as cwd, a clean environment."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

WriteFile = Callable[[str, str], Path]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No PARLANT_* or SNOWFLAKE_* variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("PARLANT_", "SNOWFLAKE_")):
            monkeypatch.delenv(name)
    yield


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch directory that is also the cwd, so error locations read `parlant.yaml:L:C`."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def write(workdir: Path) -> WriteFile:
    """write(name, text): a dedented file in the scratch directory."""

    def write_file(name: str, text: str) -> Path:
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write_file
