"""`retention` and `server.prune_interval` in parlant.yaml: what is accepted, what is
refused (one line naming the file, line and key), and what `routes` shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from parlant_router.config.durations import format_duration, parse_duration

ROUTER = str(Path(sys.executable).parent / "parlant-router")


def routes(tmp_path: Path, stores: str, server: str = "") -> subprocess.CompletedProcess[str]:
    config = tmp_path / "parlant.yaml"
    config.write_text(
        "version: 1\n"
        + (f"server:\n  {server}\n" if server else "")
        + f"backends:\n  files: {{type: json, directory: {tmp_path}}}\nstores:\n{stores}"
    )
    return subprocess.run(
        [ROUTER, "routes", "-c", str(config)], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90d", 90 * 86400), ("2w", 14 * 86400), ("12h", 43200), ("30m", 1800), ("1.5s", 1.5)],
)
def test_durations_read_and_write_back(text: str, seconds: float) -> None:
    duration = parse_duration(text)
    assert duration.total_seconds() == seconds
    assert parse_duration(format_duration(duration)) == duration


def test_routes_shows_each_store_s_retention(tmp_path: Path) -> None:
    shown = routes(tmp_path, "  sessions: {backend: files, retention: 90d}\n  customers: files\n")
    assert shown.returncode == 0, shown.stderr
    rows = {line.split("│")[1].strip(): line for line in shown.stdout.splitlines() if "│" in line}
    assert "90d" in rows["sessions"] and "90d" not in rows["customers"]


@pytest.mark.parametrize(
    ("stores", "server", "error"),
    [
        (
            "  sessions: {backend: files, retention: 90}\n",
            "",
            ":5:41: stores.sessions.retention: 90 is not a duration: write a number and a "
            "unit, e.g. 90d, 12h, 30m, 45s or 2w",
        ),
        (
            "  sessions: {backend: files, retention: 0d}\n",
            "",
            ":5:41: stores.sessions.retention: '0d': a duration must be longer than zero",
        ),
        (
            "  customers: {backend: files, retention: 30d}\n",
            "",
            ":5:42: stores.customers.retention: only sessions, evaluations take a retention",
        ),
        (
            "  sessions: files\n",
            "prune_interval: hourly",
            ":3:19: server.prune_interval: 'hourly' is not a duration",
        ),
    ],
)
def test_a_wrong_retention_is_one_line_naming_file_line_and_key(
    tmp_path: Path, stores: str, server: str, error: str
) -> None:
    refused = routes(tmp_path, stores, server)
    assert refused.returncode == 2 and refused.stdout == ""
    [line] = refused.stderr.splitlines()
    assert line.startswith(str(tmp_path / "parlant.yaml") + ":") and error in line, line
