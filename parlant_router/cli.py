"""Command line: `parlant-router` and the `parlant` alias.

Every `ParlantRouterError` ends the command with its message on stderr (one line
per mistake: a `ConfigError` may report several) and no traceback: exit 2 for a
`ConfigError`, 1 for a `RouterError`.
The router and the store probe are imported inside their commands, so that
`routes`, `schema` and `init` stay fast and never import Parlant.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from parlant_router.config.durations import format_duration
from parlant_router.config.loading import LoadedConfig, load_config
from parlant_router.config.store_selection import parse_store_list
from parlant_router.errors import ConfigError, ParlantRouterError
from parlant_router.transfer.copier import Mode
from parlant_router.transfer.errors import TransferError

F = TypeVar("F", bound=Callable[..., Any])

SCHEMA_FILE = "parlant.schema.json"


def _user_error(error: BaseException) -> ParlantRouterError | None:
    """The ParlantRouterError in `error`, also inside an exception group (task groups)."""
    if isinstance(error, ParlantRouterError):
        return error
    inner = getattr(error, "exceptions", None)
    if isinstance(inner, (list, tuple)):
        for member in inner:
            found = _user_error(member) if isinstance(member, BaseException) else None
            if found is not None:
                return found
    return None


def _reports_errors(command: F) -> F:
    """Turn a ParlantRouterError into its lines on stderr and the documented exit status."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except Exception as error:
            found = _user_error(error)
            if found is None:
                raise  # a bug: the traceback is what a maintainer needs
            click.echo(str(found), err=True)
            sys.exit(2 if isinstance(found, (ConfigError, TransferError)) else 1)

    return wrapper  # type: ignore[return-value]


def _config_options(command: F) -> F:
    """-c/--config, -e/--env and --set, shared by run, check and routes."""
    command = click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override one key (dotted path; the value is a YAML scalar). Repeatable.",
    )(command)
    # No click envvar: load_config reads PARLANT_ENV/PARLANT_CONFIG itself, and says so in errors.
    command = click.option(
        "-e",
        "--env",
        default=None,
        help="Environment to apply from `environments:` (default: $PARLANT_ENV).",
    )(command)
    command = click.option(
        "-c",
        "--config",
        "config_path",
        default=None,
        type=click.Path(dir_okay=False, path_type=str),
        help="Config file (default: $PARLANT_CONFIG or ./parlant.yaml).",
    )(command)
    return command


def _load(config_path: str | None, env: str | None, overrides: Sequence[str]) -> LoadedConfig:
    return load_config(config_path, env=env, overrides=overrides)


def _console() -> Console:
    # Off a terminal (pipes, CI, tests) keep table rows on one line each.
    probe = Console()
    return probe if probe.is_terminal else Console(width=240)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Route every Parlant store to a backend declared in parlant.yaml."""


@cli.command()
@_config_options
@_reports_errors
def run(config_path: str | None, env: str | None, overrides: tuple[str, ...]) -> None:
    """Start the Parlant server with the stores routed as configured."""
    loaded = _load(config_path, env, overrides)
    from parlant_router.router import run_server

    try:
        asyncio.run(run_server(loaded))
    except KeyboardInterrupt:
        sys.exit(130)


@cli.command()
@_config_options
@click.option(
    "--no-write", is_flag=True, help="Only connect and read; do not create/write/drop a probe."
)
@_reports_errors
def check(
    config_path: str | None, env: str | None, overrides: tuple[str, ...], no_write: bool
) -> None:
    """Validate, connect to every backend in use and probe each store: one PASS/FAIL line each."""
    loaded = _load(config_path, env, overrides)
    from parlant_router.check import check_stores

    results = asyncio.run(check_stores(loaded, write=not no_write))
    click.echo(_replicas_line(loaded))
    if not results:
        click.echo("no stores are routed: every store keeps Parlant's default")
    for result in results:
        status = "PASS" if result.ok else "FAIL"
        click.echo(f"{status} {result.store:<28} {result.backend:<16} {result.detail}")
    if not all(result.ok for result in results):
        sys.exit(1)


@cli.command()
@_config_options
@click.option(
    "--dry-run",
    is_flag=True,
    help="Report what would change, per store and version; write nothing.",
)
@click.option(
    "--stores",
    "store_names",
    default=None,
    metavar="A,B",
    help="Only these routed stores (comma-separated; default: every routed store).",
)
@_reports_errors
def migrate(
    config_path: str | None,
    env: str | None,
    overrides: tuple[str, ...],
    dry_run: bool,
    store_names: str | None,
) -> None:
    """Run the migrations of every routed store once, as the server would at startup.

    Exit status: 0 when every store opened (and migrated); 1 when one could not, with a
    line naming it; 2 for a mistake in the config or the options.
    """
    loaded = _load(config_path, env, overrides)
    from parlant_router.migrate import ProgressDisplay, migrate_stores

    stores = parse_store_list(store_names)
    with ProgressDisplay(Console(stderr=True), dry_run=dry_run) as progress:
        reports = asyncio.run(
            migrate_stores(loaded, dry_run=dry_run, stores=stores, progress=progress)
        )
    console = _console()
    if not reports:
        console.print("no stores are routed: every store keeps Parlant's default", highlight=False)
        return
    table = Table()
    for column in ("store", "collection", "version", "documents", "outcome"):
        table.add_column(column, justify="right" if column == "documents" else "left")
    for report in reports:
        if report.error is not None:
            table.add_row(report.store, "", "", "", "FAILED (see below)")
        elif report.note is not None:
            table.add_row(report.store, "", "", "", report.note)
        for row in report.rows:
            table.add_row(row.store, row.collection, row.version, f"{row.documents:,}", row.outcome)
    console.print(table)
    failed = [report for report in reports if report.error is not None]
    changed = sum(1 for report in reports if report.changed)
    if dry_run:
        console.print(
            f"dry run: {changed} store(s) would change; nothing was written", highlight=False
        )
    else:
        console.print(f"{changed} store(s) migrated, {len(failed)} failed", highlight=False)
    for report in failed:
        assert report.error is not None
        prefix = (
            "" if report.error.startswith(f"stores.{report.store}:") else f"stores.{report.store}: "
        )
        click.echo(prefix + report.error, err=True)
    if failed:
        sys.exit(1)


@cli.command()
@_config_options
@_reports_errors
def routes(config_path: str | None, env: str | None, overrides: tuple[str, ...]) -> None:
    """Show where every configured store lives (secrets are never shown)."""
    from parlant_router.config.routes import resolve_routes

    loaded = _load(config_path, env, overrides)
    resolved = resolve_routes(loaded.config)
    console = _console()
    sources = str(loaded.path) + (f" + {loaded.overlay}" if loaded.overlay else "")
    console.print(sources + (f" (env: {loaded.env})" if loaded.env else ""), highlight=False)
    console.print(_replicas_line(loaded), highlight=False)
    table = Table()
    for column in ("store", "backend", "type", "cache", "retention", "location"):
        table.add_column(column, overflow="fold")
    for route in resolved:
        location = route.location.replace("; ", "\n").replace(", ", "\n")
        cache = "off" if route.cache_max_bytes is None else _size(route.cache_max_bytes)
        retention = "-" if route.retention is None else format_duration(route.retention)
        table.add_row(
            route.store, route.backend_name, route.backend.type, cache, retention, location
        )
    console.print(table)
    if not resolved:
        console.print("no stores are routed: every store keeps Parlant's default")


@cli.command()
@_config_options
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option(
    "--stores",
    "only",
    default=None,
    metavar="A,B",
    help="Prune only these stores (default: every store with a retention).",
)
@_reports_errors
def prune(
    config_path: str | None,
    env: str | None,
    overrides: tuple[str, ...],
    dry_run: bool,
    only: str | None,
) -> None:
    """Delete what the stores' `retention` lets go now (sessions, evaluations): one pass."""
    loaded = _load(config_path, env, overrides)
    from parlant_router.prune import prune_stores

    stores = parse_store_list(only)
    results = asyncio.run(prune_stores(loaded, dry_run=dry_run, only=stores))
    if not results:
        click.echo("nothing to prune: no routed store sets a `retention` (sessions, evaluations)")
        return
    for result in results:
        click.echo(result.describe())


def _transfer_options(command: F) -> F:
    """--stores and --dry-run, shared by copy, export and import."""
    command = click.option(
        "--dry-run", is_flag=True, help="Print what would move, per store; write nothing."
    )(command)
    command = click.option(
        "--stores",
        "store_names",
        default=None,
        metavar="A,B",
        help="Only these stores (comma-separated; default: every store on both sides).",
    )(command)
    return command


def _merge_options(command: F) -> F:
    """--merge and --replace: what to do with a destination store that holds data."""
    command = click.option(
        "--replace", is_flag=True, help="Empty a destination store that holds data first."
    )(command)
    command = click.option(
        "--merge",
        is_flag=True,
        help="Merge into a destination store that holds data (same id: the newer wins).",
    )(command)
    return command


def _mode(merge: bool, replace: bool) -> Mode:
    if merge and replace:
        raise ConfigError("choose one of --merge and --replace", file="options")
    return "merge" if merge else "replace" if replace else "refuse"


def _transfer(
    verb: str, done: str, dry_run: bool, run: Callable[[Callable[[str, int, int], None]], Any]
) -> None:
    """Run a copy, export or import with progress bars, then print its summary table; exit 1
    when a store's verification found a difference."""
    from parlant_router.migrate import ProgressDisplay

    with ProgressDisplay(Console(stderr=True), dry_run=dry_run, verb=verb) as progress:
        outcomes = asyncio.run(run(progress))
    console = _console()
    table = Table()
    for column in ("store", "collection", "documents", "bytes", "seconds", "verified"):
        right = column in ("documents", "bytes", "seconds")
        table.add_column(column, justify="right" if right else "left")
    for outcome in outcomes:
        for c in outcome.collections:
            if dry_run:
                held = f" (destination holds {c.resumed_after:,})" if c.resumed_after else ""
                table.add_row(
                    outcome.store,
                    c.collection,
                    f"{c.source.documents:,}",
                    "",
                    "",
                    outcome.action + held,
                )
                continue
            verified = {None: "-", True: "yes", False: "NO: differs"}[c.verified]
            if c.merged is not None:
                verified += (
                    f" (merged: {c.merged.inserted:,} new, {c.merged.replaced:,} replaced, "
                    f"{c.merged.kept:,} kept)"
                )
            elif c.resumed_after:
                verified += f" (resumed after {c.resumed_after:,})"
            table.add_row(
                outcome.store,
                c.collection,
                f"{c.source.documents:,}",
                f"{c.source.bytes:,}",
                f"{c.seconds:.1f}",
                verified,
            )
    console.print(table)
    if not outcomes:
        console.print("nothing to move: no store is on both sides", highlight=False)
        return
    if dry_run:
        console.print("dry run: nothing was written", highlight=False)
        return
    failed = [o.store for o in outcomes if not o.verified]
    console.print(
        f"{len(outcomes)} store(s) {done}, {len(outcomes) - len(failed)} verified",
        highlight=False,
    )
    if failed:
        click.echo(
            f"verification failed for {', '.join(failed)}: the destination differs from the "
            "source (see the table)",
            err=True,
        )
        sys.exit(1)


@cli.command("copy")
@_config_options
@click.option("--to-env", default=None, help="Destination: this environment of the config.")
@click.option(
    "--to-config",
    default=None,
    type=click.Path(dir_okay=False, path_type=str),
    help="Destination: this config file (with --to-env, that environment of it).",
)
@click.option(
    "--from-parlant-home",
    default=None,
    type=click.Path(path_type=Path),
    help="Source: a plain parlant-server home (its JSON files) instead of the config's routing.",
)
@_transfer_options
@_merge_options
@_reports_errors
def copy_command(
    config_path: str | None,
    env: str | None,
    overrides: tuple[str, ...],
    to_env: str | None,
    to_config: str | None,
    from_parlant_home: Path | None,
    store_names: str | None,
    dry_run: bool,
    merge: bool,
    replace: bool,
) -> None:
    """Copy the routed stores' data to another environment or config, and verify it.

    Exit status: 0 when every store was copied and verified; 1 when a verification found a
    difference; 2 for a refused destination, an unreadable source, an unwritable
    destination or a mistake in the options (one line).
    """
    if to_env is None and to_config is None:
        raise ConfigError("name the destination: --to-env ENV or --to-config FILE", file="options")
    mode = _mode(merge, replace)
    destination = load_config(to_config or config_path, env=to_env)
    source: LoadedConfig | Path = (
        from_parlant_home if from_parlant_home is not None else _load(config_path, env, overrides)
    )
    from parlant_router.transfer.commands import copy_between_configs

    _transfer(
        "Copying",
        "copied",
        dry_run,
        lambda progress: copy_between_configs(
            source,
            destination,
            only=parse_store_list(store_names),
            mode=mode,
            dry_run=dry_run,
            progress=progress,
        ),
    )


@cli.command("export")
@_config_options
@click.argument("directory", type=click.Path(path_type=Path))
@_transfer_options
@click.option("--replace", is_flag=True, help="Write stores the export holds already again.")
@_reports_errors
def export_command(
    config_path: str | None,
    env: str | None,
    overrides: tuple[str, ...],
    directory: Path,
    store_names: str | None,
    dry_run: bool,
    replace: bool,
) -> None:
    """Export the routed stores to DIRECTORY (JSON Lines, gzip, and a manifest: docs/copy.md)."""
    loaded = _load(config_path, env, overrides)
    from parlant_router.transfer.commands import export_stores

    _transfer(
        "Exporting",
        "exported",
        dry_run,
        lambda progress: export_stores(
            loaded,
            directory,
            only=parse_store_list(store_names),
            replace=replace,
            dry_run=dry_run,
            progress=progress,
        ),
    )


@cli.command("import")
@_config_options
@click.argument("directory", type=click.Path(path_type=Path))
@_transfer_options
@_merge_options
@_reports_errors
def import_command(
    config_path: str | None,
    env: str | None,
    overrides: tuple[str, ...],
    directory: Path,
    store_names: str | None,
    dry_run: bool,
    merge: bool,
    replace: bool,
) -> None:
    """Import an export DIRECTORY into the routed stores, and verify it."""
    mode = _mode(merge, replace)
    loaded = _load(config_path, env, overrides)
    from parlant_router.transfer.commands import import_stores

    _transfer(
        "Importing",
        "imported",
        dry_run,
        lambda progress: import_stores(
            loaded,
            directory,
            only=parse_store_list(store_names),
            mode=mode,
            dry_run=dry_run,
            progress=progress,
        ),
    )


def _replicas_line(loaded: LoadedConfig) -> str:
    server = loaded.config.server
    if server.replicas == "one":
        return "replicas: one (this server is the only writer of its stores)"
    return (
        f"replicas: many (max staleness {server.max_staleness:g} s; writes published through "
        "PARLANT_ROUTER_CHANGES on the sessions' backend)"
    )


def _size(size: int) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} B"


def schema_text() -> str:
    """The JSON Schema of parlant.yaml as committed in schemas/parlant.schema.json."""
    from parlant_router.config.models import config_json_schema

    return json.dumps(config_json_schema(), indent=2, sort_keys=True) + "\n"


@cli.command()
def schema() -> None:
    """Print the JSON Schema of parlant.yaml (for editors)."""
    click.echo(schema_text(), nl=False)


def starter_config() -> str:
    """The commented starter parlant.yaml that `init` writes."""
    return (
        resources.files("parlant_router")
        .joinpath("templates", "parlant.yaml")
        .read_text(encoding="utf-8")
    )


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.argument("path", default="parlant.yaml", type=click.Path(dir_okay=False, path_type=Path))
def init(force: bool, path: Path) -> None:
    """Write a starter parlant.yaml (and parlant.schema.json beside it, for editors)."""
    schema_path = path.with_name(SCHEMA_FILE)
    if not force:
        for existing in (path, schema_path):
            if existing.exists():
                click.echo(f"{existing}: already exists (use --force to overwrite)", err=True)
                sys.exit(1)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(starter_config(), encoding="utf-8")
        schema_path.write_text(schema_text(), encoding="utf-8")
    except OSError as error:
        click.echo(f"{error.filename or path}: cannot write: {error.strerror}", err=True)
        sys.exit(1)
    click.echo(f"wrote {path} and {schema_path}; try: parlant-router routes -c {path}")


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Loopback port to serve on (default: a free one).",
)
@click.option("--database", default="PARLANT", show_default=True, help="Database to create.")
@click.option("--schema", default="PUBLIC", show_default=True, help="Schema to create.")
def emulator(directory: Path, port: int | None, database: str, schema: str) -> None:
    """Serve the Snowflake emulator in DIRECTORY to other processes, until SIGTERM or Ctrl-C.

    Every backend with `emulator: DIRECTORY` then attaches to this server, so several
    `parlant-router run` replicas can share the directory and come and go independently.
    """
    from parlant_router.snowflake import SnowflakeEmulator, SnowflakeEmulatorError

    served = SnowflakeEmulator(directory, database=database, schema=schema, port=port, attach=False)
    with _stop_signals() as stopping:
        try:
            served.start()
        except SnowflakeEmulatorError as error:
            click.echo(str(error), err=True)
            sys.exit(2)
        try:
            click.echo(
                f"Snowflake emulator serving {served.directory} on {served.host}:{served.port} "
                f"(credentials: {served.credentials_file})"
            )
            sys.stdout.flush()
            stopping.wait()
        finally:
            served.stop()


@contextlib.contextmanager
def _stop_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT (instead of their default ends) while inside."""
    stopping = threading.Event()
    # Installed before the emulator starts: a signal during startup stops it once started.
    previous = {
        signum: signal.signal(signum, lambda *_: stopping.set())
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield stopping
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `parlant-router`."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="parlant-router")


# Options of `parlant --config X ...` that take a value, and Parlant client's own
# top-level ones (`parlant -s ADDRESS agent list`), to find where the options end.
_VALUE_OPTIONS = frozenset({"-e", "--env", "--set", "-s", "--server", "--log-port"})


def _wants_router(argv: Sequence[str]) -> bool:
    """True when the top-level options (before any subcommand) name a config file."""
    args = iter(argv)
    for arg in args:
        if arg == "--" or not arg.startswith("-"):
            return False
        if arg in ("-c", "--config") or arg.startswith("--config="):
            return True
        if arg.startswith("-c") and not arg.startswith("--"):
            return True  # -cFILE
        if arg in _VALUE_OPTIONS:
            next(args, None)
    return False


def parlant_alias() -> None:
    """Entry point of `parlant`: `parlant --config X` runs the router, the rest is Parlant's CLI."""
    argv = sys.argv[1:]
    if _wants_router(argv):
        cli.main(args=["run", *argv], prog_name="parlant")
        return
    from parlant.bin.client import main as parlant_client_main

    parlant_client_main()
