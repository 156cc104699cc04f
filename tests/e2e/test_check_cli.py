"""`parlant-router check` on the shipped parlant.yaml, and its failure lines.

The shipped file's emulator directory and home are redirected to tmp with `--set`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

SHIPPED = Path(__file__).resolve().parents[2] / "parlant.yaml"


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(("PASS", "FAIL"))]


def _check_shipped(harness: Any, tmp_path: Path, emulator: Path) -> Any:
    """`parlant-router check` on the shipped file, home in tmp, emulator in `emulator`."""
    return harness.cli(
        "check",
        "-c",
        str(SHIPPED),
        "--set",
        f"server.home={tmp_path / 'home'}",
        "--set",
        f"backends.warehouse.emulator={emulator}",
    )


def test_check_passes_on_the_shipped_file(harness: Any, tmp_path: Path) -> None:
    result = _check_shipped(harness, tmp_path, tmp_path / "sf")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = _lines(result.stdout)
    assert len(lines) == 13 and all(line.startswith("PASS") for line in lines), result.stdout
    assert "PARLANT_SESSIONS_PARLANT_ROUTER_PROBE_" in result.stdout


def _unwritable_directory(tmp_path: Path) -> Path:
    if os.geteuid() == 0:
        # Root writes through permission bits; sysfs refuses new directories even to root.
        return Path("/sys/parlant-router-emulator")
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o555)
    return directory / "sf"


def test_check_fails_clearly_on_an_unwritable_emulator_directory(
    harness: Any, tmp_path: Path
) -> None:
    target = _unwritable_directory(tmp_path)
    result = _check_shipped(harness, tmp_path, target)
    assert result.returncode == 1
    lines = _lines(result.stdout)
    assert len(lines) == 13
    for line in lines:
        assert line.startswith("FAIL")
        assert f"the Snowflake emulator directory {target} is not writable" in line
    assert "Traceback" not in result.stdout + result.stderr


def test_check_fails_clearly_on_a_wrong_snowflake_password(
    harness: Any, tmp_path: Path, wrong_password_home: tuple[Path, str]
) -> None:
    snowflake_home, secret = wrong_password_home
    config = tmp_path / "parlant.yaml"
    config.write_text(
        "version: 1\n"
        f"server: {{home: {tmp_path / 'home'}}}\n"
        "backends:\n  warehouse: {type: snowflake, connection_name: wrong}\n"
        "stores:\n  sessions: warehouse\n  customers: warehouse\n"
    )
    result = harness.cli("check", "-c", str(config), env={"SNOWFLAKE_HOME": str(snowflake_home)})
    assert result.returncode == 1
    lines = _lines(result.stdout)
    assert [line.split()[:2] for line in lines] == [["FAIL", "sessions"], ["FAIL", "customers"]]
    for line in lines:
        assert "Incorrect username or password was specified" in line
    output = result.stdout + result.stderr
    assert secret not in output and "Traceback" not in output
