"""Wherever a secret is written, no command prints it: a table of placements x commands.

Each placement puts a distinctive secret (`S3cr3t-<n>`) somewhere a user can: the file, a
`${VAR}`, `--set`, a connector `options` entry, an overlay file, an environment block, or a
mistake next to (or in) a secret key. Each command runs through `parlant_router.cli.main`
in this process, with no network: `routes`; `check` on a key-pair backend whose key file is
missing (it fails at connect, before any network); `run` for the placements that are config
mistakes (it exits before starting anything). The secret must appear nowhere in stdout or
stderr; a config mistake exits 2 with one `LOCATION: key: message` line per error and no
traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from parlant_router.cli import main

WriteFile = Callable[[str, str], Path]

# A key-pair backend: `check` fails reading the (missing) key file, before any connection.
BACKEND = """\
version: 1
server: {home: home}
backends:
  w:
    type: snowflake
    account: acc
    user: u
    private_key_file: missing.pem
"""
STORES = "stores:\n  agents: {backend: w}\n"
# `FILE:LINE:COL: key: message`, `FILE: message` or `--set KEY=VALUE: key: message`.
ERROR_LINE = re.compile(r"^(--set \S+|[\w./-]+(:\d+(:\d+)?)?): \S.*$")


@dataclass(frozen=True)
class Placement:
    """Where the secret goes; `errors` is the number of error lines (0: a valid config)."""

    secret: str
    backend: str = ""
    """Lines added to backend `w` (indented by 4)."""
    rest: str = ""
    """Lines after `stores:` (top-level keys)."""
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    overlay: str | None = None
    """parlant.prod.yaml, applied with `-e prod`."""
    errors: int = 0


PLACEMENTS = {
    # Valid configurations: `routes` succeeds, `check` fails at connect.
    "passphrase in the file": Placement("S3cr3t-1", backend="private_key_passphrase: S3cr3t-1"),
    "passphrase from ${VAR}": Placement(
        "S3cr3t-2", backend="private_key_passphrase: ${PW}", env={"PW": "S3cr3t-2"}
    ),
    "passphrase by --set": Placement(
        "S3cr3t-3", args=("--set", "backends.w.private_key_passphrase=S3cr3t-3")
    ),
    "options passcode in the file": Placement("S3cr3t-4", backend="options: {passcode: S3cr3t-4}"),
    "options oauth_client_secret by --set": Placement(
        "S3cr3t-5", args=("--set", "backends.w.options.oauth_client_secret=S3cr3t-5")
    ),
    "passphrase in an overlay file": Placement(
        "S3cr3t-6",
        overlay="backends:\n  w: {private_key_passphrase: S3cr3t-6}\n",
        args=("-e", "prod"),
    ),
    "passphrase in an environment block": Placement(
        "S3cr3t-7",
        rest="environments:\n  prod:\n    backends: {w: {private_key_passphrase: S3cr3t-7}}\n",
        args=("-e", "prod"),
    ),
    "options proxy_password from ${VAR}": Placement(
        "S3cr3t-8", backend="options: {proxy_password: '${PX}'}", env={"PX": "S3cr3t-8"}
    ),
    # Mistakes: every command exits 2 at load.
    "misspelt secret key in the file": Placement(
        "S3cr3t-11", backend="pasword: S3cr3t-11", errors=1
    ),
    "misspelt secret key by --set": Placement(
        "S3cr3t-12", args=("--set", "backends.w.pasword=S3cr3t-12"), errors=1
    ),
    "--set under a secret key": Placement(
        "S3cr3t-13", args=("--set", "backends.w.private_key_passphrase.x=S3cr3t-13"), errors=1
    ),
    "options private_key_file_pwd": Placement(
        "S3cr3t-14", backend="options: {private_key_file_pwd: S3cr3t-14}", errors=1
    ),
    "options token": Placement("S3cr3t-15", backend="options: {token: S3cr3t-15}", errors=1),
    "--set without '='": Placement(
        "S3cr3t-16", args=("--set", "backends.w.private_key_passphrase:S3cr3t-16"), errors=1
    ),
    "secret also used as a value an error quotes": Placement(
        "S3cr3t-17",
        backend="private_key_passphrase: ${PW}",
        rest="  tags: {backend: '${PW}'}\n",
        env={"PW": "S3cr3t-17"},
        errors=1,
    ),
    "unquoted number in a secret option, beside a bad port": Placement(
        "31731731", backend="port: x\n    options: {passcode: 31731731}", errors=2
    ),
    "misspelt secret key in an overlay file": Placement(
        "S3cr3t-19",
        overlay="backends:\n  w: {pasword: S3cr3t-19}\n",
        args=("-e", "prod"),
        errors=1,
    ),
    "second authentication in an environment block": Placement(
        "S3cr3t-20",
        rest="environments:\n  prod:\n    backends: {w: {token: S3cr3t-20}}\n",
        args=("-e", "prod"),
        errors=1,
    ),
    "--set of a whole backend": Placement(
        "S3cr3t-21", args=("--set", "backends.w=S3cr3t-21"), errors=1
    ),
    "--set of a list into options": Placement(
        "S3cr3t-22", args=("--set", "backends.w.options.passcode=[S3cr3t-22]"), errors=1
    ),
    "--set of options itself": Placement(
        "S3cr3t-23", args=("--set", "backends.w.options=S3cr3t-23"), errors=1
    ),
}
VALID = [name for name, placement in PLACEMENTS.items() if not placement.errors]
MISTAKES = [name for name, placement in PLACEMENTS.items() if placement.errors]
CASES = [
    *((name, command) for name in VALID for command in ("routes", "check")),
    *((name, command) for name in MISTAKES for command in ("routes", "check", "run")),
]


def test_the_table_covers_every_placement_and_command() -> None:
    assert (len(VALID), len(MISTAKES), len(CASES)) == (8, 13, 55)


@pytest.mark.parametrize(("name", "command"), CASES)
def test_no_command_prints_a_secret(
    write: WriteFile,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    command: str,
) -> None:
    placement = PLACEMENTS[name]
    for variable, value in placement.env.items():
        monkeypatch.setenv(variable, value)
    # `check` binds Parlant's home process-wide: undo it after the test.
    monkeypatch.setenv("PARLANT_HOME", str(workdir / "home"))
    backend = f"    {placement.backend}\n" if placement.backend else ""
    write("parlant.yaml", BACKEND + backend + STORES + placement.rest)
    if placement.overlay is not None:
        write("parlant.prod.yaml", placement.overlay)

    with pytest.raises(SystemExit) as exited:
        main([command, *placement.args])
    out, err = capsys.readouterr()

    assert placement.secret not in out + err
    assert "Traceback" not in out + err
    if placement.errors:
        assert (exited.value.code, out) == (2, "")
        lines = err.splitlines()
        assert len(lines) == placement.errors, err
        assert all(ERROR_LINE.match(line) for line in lines), err
    elif command == "routes":
        assert (exited.value.code, err) == (0, "")
        assert "│ agents " in out
    else:
        assert exited.value.code == 1
        assert "FAIL agents" in out and "private key file" in out
