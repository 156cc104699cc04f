"""Two stores whose tables would share a name in one database are refused at load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from parlant_router.cli import main
from parlant_router.config.loading import load_config
from parlant_router.config.naming import every_stored_name
from parlant_router.errors import ConfigError

WriteFile = Callable[[str, str], Path]

AGENTS_AND_TAGS = """
version: 1
backends:
  w: {type: snowflake, emulator: emu}
stores:
  agents: {backend: w, table_prefix: P_}
  tags: {backend: w, table_prefix: P_AGENT_}
"""


def test_the_reported_collision_exits_2_naming_both_stores(
    write: WriteFile, capsys: pytest.CaptureFixture[str]
) -> None:
    # agents' collection agent_tags and tags' collection tags are both P_AGENT_TAGS.
    write("parlant.yaml", AGENTS_AND_TAGS)
    with pytest.raises(SystemExit) as exited:
        main(["routes"])
    out, err = capsys.readouterr()
    assert (exited.value.code, out) == (2, "")
    assert err == (
        "parlant.yaml:6:36: stores.tags.table_prefix: table P_AGENT_TAGS is also a table of "
        "store 'agents' (stores.agents.table_prefix at parlant.yaml:5:24)\n"
    )


def test_every_table_counts_including_failed_migrations() -> None:
    assert every_stored_name("tags", "P_", "snowflake") == [
        "P_TAGS",
        "P_METADATA",
        "P_TAGS_FAILED_MIGRATIONS",
        "P_METADATA_FAILED_MIGRATIONS",
    ]
    assert every_stored_name("tags", "p_", "mongodb")[2:] == [
        "p_tags_failed_migrations",
        "p_metadata_failed_migrations",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            # Snowflake folds unquoted names: p_agent_ and P_ meet at P_AGENT_TAGS.
            AGENTS_AND_TAGS.replace("P_AGENT_", "p_agent_"),
            "parlant.yaml:6:36: stores.tags.table_prefix: table P_AGENT_TAGS is also a table "
            "of store 'agents' (stores.agents.table_prefix at parlant.yaml:5:24)",
            id="case folded",
        ),
        pytest.param(
            # Two backends on one emulator database and schema share their tables.
            AGENTS_AND_TAGS.replace(
                "  w: {type: snowflake, emulator: emu}\n",
                "  w: {type: snowflake, emulator: emu}\n  v: {type: snowflake, emulator: emu}\n",
            ).replace("tags: {backend: w", "tags: {backend: v"),
            "parlant.yaml:7:36: stores.tags.table_prefix: table P_AGENT_TAGS is also a table "
            "of store 'agents' on backend 'w' (same database and schema) "
            "(stores.agents.table_prefix at parlant.yaml:6:24)",
            id="two backends, one schema",
        ),
        pytest.param(
            "version: 1\nbackends:\n  m: {type: mongodb, url: 'mongodb://h'}\nstores:\n"
            "  agents: {backend: m, table_prefix: P_}\n"
            "  tags: {backend: m, table_prefix: P_agent_}\n",
            "parlant.yaml:6:36: stores.tags.table_prefix: table P_agent_tags is also a table "
            "of store 'agents' (stores.agents.table_prefix at parlant.yaml:5:24)",
            id="mongodb",
        ),
    ],
)
def test_collisions(write: WriteFile, text: str, expected: str) -> None:
    write("parlant.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml")
    assert str(caught.value) == expected


def test_a_collision_made_by_layers_points_at_the_layer_that_made_it(write: WriteFile) -> None:
    write("parlant.yaml", AGENTS_AND_TAGS.replace("table_prefix: P_AGENT_", "table_prefix: Q_"))
    write("parlant.prod.yaml", "stores:\n  agents: {table_prefix: Q_AGENT_, backend: w}\n")
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml", env="prod", overrides=["stores.tags.table_prefix=Q_AGENT_"])
    # tags comes after agents in the file, so it is the one at fault; `--set` set its prefix.
    assert str(caught.value) == (
        "--set stores.tags.table_prefix=Q_AGENT_: stores.tags.table_prefix: table prefix "
        "'Q_AGENT_' is also used by store 'agents' on backend 'w'; they would share Parlant's "
        "metadata table"
    )


@pytest.mark.parametrize(
    "backends",
    [
        # Different schemas (or databases) of one account keep separate tables.
        "  w: {type: snowflake, emulator: emu}\n"
        "  v: {type: snowflake, emulator: emu, schema: OTHER}\n",
        "  w: {type: snowflake, emulator: emu}\n  v: {type: snowflake, emulator: emu2}\n",
        # A json store is a file named after the store: two stores never share one.
        "  w: {type: json, directory: d}\n  v: {type: json, directory: d}\n",
    ],
)
def test_separate_namespaces_do_not_collide(write: WriteFile, backends: str) -> None:
    write(
        "parlant.yaml",
        f"version: 1\nbackends:\n{backends}stores:\n"
        "  agents: {backend: w, table_prefix: P_}\n  tags: {backend: v, table_prefix: P_AGENT_}\n",
    )
    loaded = load_config("parlant.yaml")
    assert set(loaded.config.stores) == {"agents", "tags"}


def test_every_colliding_store_is_reported(write: WriteFile) -> None:
    write(
        "parlant.yaml",
        AGENTS_AND_TAGS + "  capabilities: {backend: w, table_prefix: P_AGENT_TAGS_}\n"
        "  glossary: {backend: w, table_prefix: P_AGENT_}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml")
    assert [f"{issue.line}: {issue.message}" for issue in caught.value.issues] == [
        "6: table P_AGENT_TAGS is also a table of store 'agents' "
        "(stores.agents.table_prefix at parlant.yaml:5:24)",
        "8: table prefix 'P_AGENT_' is also used by store 'tags' on backend 'w'; they would "
        "share Parlant's metadata table",
    ]
