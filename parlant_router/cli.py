"""Command line: `parlant-router` and the `parlant` alias (filled in by the config issue)."""

from __future__ import annotations


def main() -> None:
    raise SystemExit("parlant-router: not built yet")


def parlant_alias() -> None:
    raise SystemExit("parlant: not built yet")
