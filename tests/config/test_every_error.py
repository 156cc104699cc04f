"""A file with several mistakes reports every one of them in one run, in file order."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from parlant_router.cli import main
from parlant_router.config.loading import load_config
from parlant_router.errors import ConfigError

WriteFile = Callable[[str, str], Path]


def test_the_reported_file_gives_one_line_per_mistake(
    write: WriteFile, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        "parlant.yaml",
        """
        version: 1
        stores:
          agnets: {backend: w}
        backends:
          w: {type: snowflak, emulator: emu}
        server:
          port: abc
        """,
    )
    with pytest.raises(SystemExit) as exited:
        main(["routes"])
    out, err = capsys.readouterr()
    assert (exited.value.code, out) == (2, "")
    assert err.splitlines() == [
        "parlant.yaml:3:3: stores.agnets: unknown store 'agnets' (did you mean 'agents'?)",
        "parlant.yaml:5:13: backends.w.type: unknown backend type 'snowflak' (did you mean "
        "'snowflake'?); expected one of snowflake, json, transient, mongodb, custom",
        "parlant.yaml:7:9: server.port: input should be a valid integer, unable to parse "
        "string as an integer",
    ]


def test_mistakes_in_one_mapping_are_all_reported(write: WriteFile) -> None:
    # Unknown keys used to stop the mapping's other checks.
    write(
        "parlant.yaml",
        "version: 1\nbackends:\n  w:\n    type: snowflake\n    acount: a\n    port: x\n"
        "    usr: u\nstores:\n  sesions: w\n  tgas: w\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml")
    assert [str(issue) for issue in caught.value.issues] == [
        "parlant.yaml:5:5: backends.w.acount: unknown key 'acount' (did you mean 'account'?)",
        "parlant.yaml:6:11: backends.w.port: input should be a valid integer, unable to parse "
        "string as an integer",
        "parlant.yaml:7:5: backends.w.usr: unknown key 'usr' (did you mean 'user'?)",
        "parlant.yaml:9:3: stores.sesions: unknown store 'sesions' (did you mean 'sessions'?)",
        "parlant.yaml:10:3: stores.tgas: unknown store 'tgas' (did you mean 'tags'?)",
    ]


def test_route_checks_report_every_store(write: WriteFile) -> None:
    write(
        "parlant.yaml",
        """
        version: 1
        backends:
          m: {type: transient}
        stores:
          sessions: {backend: nope}
          agents: {backend: m, vector: chroma}
          evaluations: {backend: m, cache: true}
          tags: {backend: nope}
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml")
    assert str(caught.value) == "\n".join(
        [
            "parlant.yaml:5:23: stores.sessions.backend: backend 'nope' is not defined; defined: m",
            "parlant.yaml:6:32: stores.agents.vector: only vector-backed stores (journeys, "
            "glossary, canned_responses, capabilities) take a vector database",
            "parlant.yaml:7:36: stores.evaluations.cache: a transient backend has no read "
            "cache: it keeps documents in memory already",
            "parlant.yaml:7:36: stores.evaluations.cache: store 'evaluations' is not cached "
            "(turns do not read it)",
            "parlant.yaml:8:19: stores.tags.backend: backend 'nope' is not defined; defined: m",
        ]
    )


def test_layers_come_in_order_file_overlay_set(write: WriteFile) -> None:
    write("parlant.yaml", "version: 1\nserver:\n  prot: 1\n")
    write("parlant.prod.yaml", "server:\n  hots: x\n")
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml", env="prod", overrides=["server.migrate=maybe"])
    assert str(caught.value).splitlines() == [
        "parlant.yaml:3:3: server.prot: unknown key 'prot' (did you mean 'port'?)",
        "parlant.prod.yaml:2:3: server.hots: unknown key 'hots' (did you mean 'host'?)",
        "--set server.migrate=maybe: server.migrate: input should be a valid boolean, unable "
        "to interpret input",
    ]


def test_a_single_error_keeps_its_one_line_and_fields(write: WriteFile) -> None:
    write("parlant.yaml", "version: 1\nserver:\n  prot: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml")
    error = caught.value
    assert error.issues == (error,)
    assert str(error) == "parlant.yaml:3:3: server.prot: unknown key 'prot' (did you mean 'port'?)"


def test_several_errors_expose_the_first_in_the_fields(write: WriteFile) -> None:
    write("parlant.yaml", "version: 1\nserver:\n  prot: 1\n  hots: x\n")
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml")
    error = caught.value
    assert (error.line, error.key, len(error.issues)) == (3, "server.prot", 2)
    assert [issue.key for issue in error.issues] == ["server.prot", "server.hots"]
    assert str(error) == "\n".join(str(issue) for issue in error.issues)
