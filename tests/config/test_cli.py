"""The command line, through real subprocesses of the installed entry points."""

from __future__ import annotations

import builtins
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from parlant.client import ParlantClient

from parlant_router import cli
from parlant_router.errors import RouterError

WriteFile = Callable[[str, str], Path]

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
SNOWFLAKE_VARIABLES = {
    "SNOWFLAKE_ACCOUNT": "acc-1",
    "SNOWFLAKE_USER": "parlant",
    "SNOWFLAKE_PASSWORD": "Pw-never-shown-77",
    "SNOWFLAKE_WAREHOUSE": "wh",
    "SNOWFLAKE_DATABASE": "prod_db",
    "SNOWFLAKE_SCHEMA": "app",
}


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("PARLANT_", "SNOWFLAKE_"))
    }
    environment.update(env or {})
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], status: int, line: str) -> None:
    assert result.returncode == status
    assert result.stderr == line + "\n"
    assert "Traceback" not in result.stdout + result.stderr


def test_routes_of_the_project_config() -> None:
    result = run("parlant-router", "routes", "-c", "parlant.yaml", cwd=REPO)
    assert result.returncode == 0, result.stderr
    for store in ("sessions", "customers", "context_variables"):
        assert f"│ {store} " in result.stdout
    assert "PARLANT.PUBLIC.PARLANT_SESSIONS_SESSIONS" in result.stdout
    assert "emulator:" in result.stdout


def test_routes_prod_shows_snowflake_tables_and_no_secret() -> None:
    result = run("parlant-router", "routes", "-e", "prod", cwd=REPO, env=SNOWFLAKE_VARIABLES)
    assert result.returncode == 0, result.stderr
    assert "PROD_DB.APP.PARLANT_CONTEXT_VARIABLES_VALUES" in result.stdout
    assert "emulator:" not in result.stdout
    assert SNOWFLAKE_VARIABLES["SNOWFLAKE_PASSWORD"] not in result.stdout + result.stderr


def test_routes_prod_with_a_variable_unset() -> None:
    variables = {k: v for k, v in SNOWFLAKE_VARIABLES.items() if k != "SNOWFLAKE_WAREHOUSE"}
    lines = (REPO / "parlant.yaml").read_text(encoding="utf-8").splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "${SNOWFLAKE_WAREHOUSE}" in text)
    col = lines[line - 1].index("${") + 1
    result = run("parlant-router", "routes", "-e", "prod", cwd=REPO, env=variables)
    assert_one_line_error(
        result,
        2,
        f"parlant.yaml:{line}:{col}: backends.warehouse.warehouse: "
        "environment variable SNOWFLAKE_WAREHOUSE is not set",
    )
    assert variables["SNOWFLAKE_PASSWORD"] not in result.stderr


def test_config_and_environment_from_variables(write: WriteFile, workdir: Path) -> None:
    write(
        "conf/app.yaml",
        """
        version: 1
        backends: {m: {type: transient}}
        stores: {tags: m}
        environments: {qa: {stores: {agents: m}}}
        """,
    )
    result = run(
        "parlant-router",
        "routes",
        cwd=workdir,
        env={"PARLANT_CONFIG": "conf/app.yaml", "PARLANT_ENV": "qa"},
    )
    assert result.returncode == 0, result.stderr
    assert "│ tags " in result.stdout and "│ agents " in result.stdout


@pytest.mark.parametrize("command", ["routes", "check", "run"])
def test_config_errors_exit_2_before_anything_starts(
    write: WriteFile, workdir: Path, command: str
) -> None:
    write("parlant.yaml", "version: 1\nstores:\n  sesions: warehouse\n")
    result = run("parlant-router", command, cwd=workdir)
    assert_one_line_error(
        result,
        2,
        "parlant.yaml:3:3: stores.sesions: unknown store 'sesions' (did you mean 'sessions'?)",
    )


def test_set_option(write: WriteFile, workdir: Path) -> None:
    write("parlant.yaml", "version: 1\nbackends: {m: {type: transient}}\n")
    ok = run(
        "parlant-router",
        "routes",
        "--set",
        "stores.tags=m",
        "--set",
        "stores.agents=m",
        cwd=workdir,
    )
    assert ok.returncode == 0, ok.stderr
    assert "│ tags " in ok.stdout and "│ agents " in ok.stdout
    bad = run("parlant-router", "routes", "--set", "stores.tags", cwd=workdir)
    assert_one_line_error(
        bad, 2, "--set stores.tags: expected KEY=VALUE (e.g. --set server.port=8801)"
    )


def test_missing_config_file(workdir: Path) -> None:
    result = run("parlant-router", "routes", "-c", "nope.yaml", cwd=workdir)
    assert_one_line_error(result, 2, "nope.yaml: config file not found")


def test_schema_command_prints_the_committed_schema(workdir: Path) -> None:
    result = run("parlant-router", "schema", cwd=workdir)
    assert result.returncode == 0
    assert result.stdout == (REPO / "schemas" / "parlant.schema.json").read_text(encoding="utf-8")


def test_init_writes_a_working_config_and_never_overwrites(workdir: Path) -> None:
    first = run("parlant-router", "init", cwd=workdir)
    assert first.returncode == 0, first.stderr
    config = workdir / "parlant.yaml"
    assert config.read_text(encoding="utf-8") == cli.starter_config()
    assert (workdir / "parlant.schema.json").is_file()
    routes = run("parlant-router", "routes", cwd=workdir)
    assert routes.returncode == 0 and "│ sessions " in routes.stdout

    config.write_text("# mine\n", encoding="utf-8")
    again = run("parlant-router", "init", cwd=workdir)
    assert_one_line_error(again, 1, "parlant.yaml: already exists (use --force to overwrite)")
    assert config.read_text(encoding="utf-8") == "# mine\n"

    forced = run("parlant-router", "init", "--force", cwd=workdir)
    assert forced.returncode == 0
    assert config.read_text(encoding="utf-8") == cli.starter_config()


def test_init_where_it_cannot_write(workdir: Path) -> None:
    (workdir / "blocker").write_text("", encoding="utf-8")
    result = CliRunner().invoke(cli.cli, ["init", "blocker/parlant.yaml"])
    assert result.exit_code == 1
    assert result.output == "blocker: cannot write: File exists\n"


def test_init_to_a_path(workdir: Path) -> None:
    result = run("parlant-router", "init", "deploy/parlant.yaml", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert (workdir / "deploy" / "parlant.yaml").is_file()
    assert (workdir / "deploy" / "parlant.schema.json").is_file()


@pytest.mark.parametrize(
    ("args", "wanted"),
    [
        (["--config", "x.yaml"], True),
        (["--config=x.yaml"], True),
        (["-c", "x.yaml", "-e", "prod"], True),
        (["-cx.yaml"], True),
        (["-e", "prod", "--set", "server.port=1", "--config", "x.yaml"], True),
        (["--help"], False),
        ([], False),
        (["-s", "http://h:8800", "agent", "list"], False),
        # A subcommand's own -c is Parlant's (composition mode), not ours.
        (["agent", "update", "-c", "fluid"], False),
        (["--", "--config", "x.yaml"], False),
    ],
)
def test_which_parlant_invocations_run_the_router(args: list[str], wanted: bool) -> None:
    assert cli._wants_router(args) is wanted


def test_parlant_with_config_runs_the_router(workdir: Path) -> None:
    # The router's own error proves `run` got the file; nothing starts.
    result = run("parlant", "-e", "prod", "--config", "nope.yaml", cwd=workdir)
    assert_one_line_error(result, 2, "nope.yaml: config file not found")


def test_parlant_without_config_is_parlants_client(workdir: Path) -> None:
    result = run("parlant", "--help", cwd=workdir)
    assert result.returncode == 0
    assert "Manage agents" in result.stdout


def test_router_errors_exit_1_without_traceback(
    write: WriteFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    write("parlant.yaml", "version: 1\n")

    def failing(config: object) -> list[object]:
        raise RouterError("backend 'warehouse' is unreachable:\nconnection refused")

    monkeypatch.setattr("parlant_router.config.routes.resolve_routes", failing)
    result = CliRunner().invoke(cli.cli, ["routes"])
    assert result.exit_code == 1
    assert result.output == "backend 'warehouse' is unreachable: connection refused\n"


def test_check_prints_a_line_per_store(write: WriteFile, workdir: Path) -> None:
    write(
        "parlant.yaml",
        """
        version: 1
        backends:
          files: {type: json, directory: data}
          memory: {type: transient}
        stores:
          sessions: files
          agents: memory
        """,
    )
    result = run("parlant-router", "check", cwd=workdir)
    assert result.returncode == 0, result.stderr
    mode, *lines = result.stdout.splitlines()
    assert mode == "replicas: one (this server is the only writer of its stores)"
    assert [line.split()[:3] for line in lines] == [
        ["PASS", "sessions", "files"],
        ["PASS", "agents", "memory"],
    ]


def test_check_fails_with_status_1(write: WriteFile, workdir: Path) -> None:
    (workdir / "not-a-directory").write_text("", encoding="utf-8")
    write(
        "parlant.yaml",
        """
        version: 1
        backends:
          files: {type: json, directory: not-a-directory}
          memory: {type: transient}
        stores:
          sessions: files
          agents: memory
        """,
    )
    result = run("parlant-router", "check", "--no-write", cwd=workdir)
    assert result.returncode == 1
    assert [line.split()[:3] for line in result.stdout.splitlines()[1:]] == [
        ["FAIL", "sessions", "files"],
        ["PASS", "agents", "memory"],
    ]
    assert "Traceback" not in result.stdout + result.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_parlant_config_serves_until_sigterm(write: WriteFile, workdir: Path) -> None:
    write(
        "parlant.yaml",
        """
        version: 1
        server: {home: home}
        backends:
          files: {type: json, directory: data}
        stores:
          agents: files
        """,
    )
    port = free_port()
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("PARLANT_", "SNOWFLAKE_"))
    }
    server = subprocess.Popen(
        [
            str(BIN / "parlant"),
            "--config",
            "parlant.yaml",
            "--set",
            f"server.port={port}",
            "--set",
            f"server.tool_service_port={free_port()}",
        ],
        cwd=workdir,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client = ParlantClient(base_url=f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                client.agents.list()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.25)
        client.agents.create(name="Routed")
        assert [agent.name for agent in client.agents.list()] == ["Routed"]
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
    assert server.returncode == 0
    assert "Traceback" not in stderr
    # The agents store was routed to the json backend.
    assert "Routed" in (workdir / "data" / "agents.json").read_text(encoding="utf-8")


# Python 3.11+: asyncio task groups raise these; 3.10 has none to unwrap.
EXCEPTION_GROUP: Any = getattr(builtins, "ExceptionGroup", None)


@pytest.mark.skipif(EXCEPTION_GROUP is None, reason="no exception groups before Python 3.11")
def test_router_error_inside_an_exception_group(
    write: WriteFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    write("parlant.yaml", "version: 1\n")

    def failing(config: object) -> list[object]:
        raise EXCEPTION_GROUP("startup", [RuntimeError("noise"), RouterError("store unreachable")])

    monkeypatch.setattr("parlant_router.config.routes.resolve_routes", failing)
    result = CliRunner().invoke(cli.cli, ["routes"])
    assert (result.exit_code, result.output) == (1, "store unreachable\n")


def test_other_exceptions_are_not_hidden(write: WriteFile, monkeypatch: pytest.MonkeyPatch) -> None:
    write("parlant.yaml", "version: 1\n")

    def failing(config: object) -> list[object]:
        raise RuntimeError("a bug")

    monkeypatch.setattr("parlant_router.config.routes.resolve_routes", failing)
    result = CliRunner().invoke(cli.cli, ["routes"])
    assert isinstance(result.exception, RuntimeError)
