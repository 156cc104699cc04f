"""`--stores a,b`: the stores a command acts on, checked against those it can act on."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from parlant_router.errors import ConfigError, did_you_mean
from parlant_router.stores.catalog import STORE_NAMES


def parse_store_list(text: str | None) -> list[str] | None:
    """The names of a `--stores` value (None when the option is not given)."""
    return None if text is None else [name.strip() for name in text.split(",") if name.strip()]


def selected_stores(
    available: Sequence[str], only: Collection[str] | None, *, unavailable: str
) -> list[str]:
    """`available` in catalog order, limited to `only` when given. A name that is no store,
    or a store not `available`, is a ConfigError on `--stores`; `unavailable` says why a
    store is not (formatted with `{available}`, the available stores)."""
    if only is None:
        return [s for s in STORE_NAMES if s in available]
    if not only:
        raise ConfigError("name at least one store (comma-separated)", file="--stores")
    for name in sorted(only):
        if name not in STORE_NAMES:
            raise ConfigError(
                f"unknown store '{name}'{did_you_mean(name, STORE_NAMES)}", file="--stores"
            )
        if name not in available:
            listed = ", ".join(s for s in STORE_NAMES if s in available) or "none"
            raise ConfigError(
                f"store '{name}' {unavailable.format(available=listed)}", file="--stores"
            )
    return [s for s in STORE_NAMES if s in only]
