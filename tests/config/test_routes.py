"""resolve_routes: the naming rules every consumer builds from."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from parlant_router.config.loading import load_config
from parlant_router.config.routes import ResolvedRoute, resolve_routes

WriteFile = Callable[[str, str], Path]

CONFIG = """
version: 1
server: {home: home}
backends:
  sf: {type: snowflake, account: a, user: u, password: p, database: db, schema: sc}
  emu: {type: snowflake, emulator: snow}
  env: {type: snowflake}
  files: {type: json, directory: data}
  memory: {type: transient}
  mongo: {type: mongodb, url: 'mongodb://x', database: pdb}
  mine: {type: custom, factory: 'my.mod:make', options: {a: 1}}
stores:
  capabilities: memory
  sessions: sf
  customers: {backend: sf, table_prefix: MY_CUSTOMERS_}
  context_variables: emu
  agents: env
  tags: files
  guidelines: mongo
  relationships: {backend: mine, table_prefix: REL_}
  evaluations: mine
  glossary: {backend: files, vector: chroma}
  journeys: {backend: files, vector: qdrant, vector_directory: /abs/vec}
"""


@pytest.fixture
def routes(write: WriteFile) -> dict[str, ResolvedRoute]:
    write("parlant.yaml", CONFIG)
    resolved = resolve_routes(load_config("parlant.yaml").config)
    return {route.store: route for route in resolved}


def test_only_configured_stores_in_parlant_order(write: WriteFile) -> None:
    write("parlant.yaml", CONFIG)
    stores = [r.store for r in resolve_routes(load_config("parlant.yaml").config)]
    assert stores == [
        "sessions",
        "customers",
        "context_variables",
        "agents",
        "tags",
        "guidelines",
        "relationships",
        "evaluations",
        "journeys",
        "glossary",
        "capabilities",
    ]


def test_snowflake_tables(routes: dict[str, ResolvedRoute]) -> None:
    sessions = routes["sessions"]
    assert (sessions.backend_name, sessions.table_prefix) == ("sf", "PARLANT_SESSIONS_")
    assert sessions.location == (
        "DB.SC.PARLANT_SESSIONS_SESSIONS, DB.SC.PARLANT_SESSIONS_EVENTS, "
        "DB.SC.PARLANT_SESSIONS_METADATA"
    )
    assert routes["customers"].table_prefix == "MY_CUSTOMERS_"
    assert routes["customers"].location == (
        "DB.SC.MY_CUSTOMERS_CUSTOMERS, DB.SC.MY_CUSTOMERS_CUSTOMER_TAG_ASSOCIATIONS, "
        "DB.SC.MY_CUSTOMERS_METADATA"
    )
    assert sessions.json_file is None and sessions.vector is None


def test_emulator_tables(routes: dict[str, ResolvedRoute], workdir: Path) -> None:
    assert routes["context_variables"].location == (
        f"emulator:{workdir / 'snow'}; PARLANT.PUBLIC.PARLANT_CONTEXT_VARIABLES_VARIABLES, "
        "PARLANT.PUBLIC.PARLANT_CONTEXT_VARIABLES_VARIABLE_TAG_ASSOCIATIONS, "
        "PARLANT.PUBLIC.PARLANT_CONTEXT_VARIABLES_VALUES, "
        "PARLANT.PUBLIC.PARLANT_CONTEXT_VARIABLES_METADATA"
    )


def test_credentials_from_variables_show_their_database(
    write: WriteFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    write("parlant.yaml", CONFIG)
    monkeypatch.setenv("SNOWFLAKE_DATABASE", "envdb")
    monkeypatch.setenv("SNOWFLAKE_SCHEMA", "envsc")
    agents = next(r for r in resolve_routes(load_config().config) if r.store == "agents")
    assert agents.location == (
        "ENVDB.ENVSC.PARLANT_AGENTS_AGENTS, ENVDB.ENVSC.PARLANT_AGENTS_AGENT_TAGS, "
        "ENVDB.ENVSC.PARLANT_AGENTS_METADATA"
    )


def test_credentials_from_unset_variables_name_them(routes: dict[str, ResolvedRoute]) -> None:
    assert routes["agents"].location.startswith(
        "$SNOWFLAKE_DATABASE.$SNOWFLAKE_SCHEMA.PARLANT_AGENTS_AGENTS, "
    )


def test_json_file(routes: dict[str, ResolvedRoute], workdir: Path) -> None:
    tags = routes["tags"]
    assert tags.json_file == workdir / "data" / "tags.json"
    assert tags.location == str(workdir / "data" / "tags.json")
    assert tags.table_prefix is None


def test_mongodb_collections_without_the_url(routes: dict[str, ResolvedRoute]) -> None:
    guidelines = routes["guidelines"]
    assert guidelines.table_prefix == "PARLANT_GUIDELINES_"
    assert guidelines.location == (
        "mongodb database 'pdb': PARLANT_GUIDELINES_guidelines, "
        "PARLANT_GUIDELINES_guideline_tag_associations, PARLANT_GUIDELINES_metadata"
    )


def test_custom_gets_the_prefix_as_given(routes: dict[str, ResolvedRoute]) -> None:
    assert routes["relationships"].table_prefix == "REL_"
    assert routes["evaluations"].table_prefix is None
    assert routes["evaluations"].location == "custom my.mod:make"


def test_vectors(routes: dict[str, ResolvedRoute], workdir: Path) -> None:
    glossary, journeys, capabilities = (routes[s] for s in ("glossary", "journeys", "capabilities"))
    assert (glossary.vector, glossary.vector_directory) == (
        "chroma",
        workdir / "home" / "vectors" / "glossary",
    )
    assert glossary.location.endswith(f"; vectors: chroma {workdir / 'home/vectors/glossary'}")
    assert (journeys.vector, journeys.vector_directory) == ("qdrant", Path("/abs/vec"))
    assert (capabilities.vector, capabilities.vector_directory) == ("transient", None)
    assert capabilities.location == "memory; vectors: memory"


def test_two_backends_may_use_the_same_prefix(write: WriteFile) -> None:
    write(
        "parlant.yaml",
        """
        version: 1
        backends:
          a: {type: snowflake, emulator: a}
          b: {type: snowflake, emulator: b}
        stores:
          sessions: {backend: a, table_prefix: X_}
          customers: {backend: b, table_prefix: X_}
        """,
    )
    assert [r.table_prefix for r in resolve_routes(load_config().config)] == ["X_", "X_"]
