"""`copy` to a Snowflake account that refuses the login: one line naming the backend and
Snowflake's reason, exit 2, no secret, no traceback, nothing written to the source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def test_a_wrong_password_is_one_line_without_the_secret(
    harness: Any, tmp_path: Path, wrong_password_home: tuple[Path, str]
) -> None:
    snowflake_home, secret = wrong_password_home
    data = tmp_path / "data"
    data.mkdir()
    source = {"metadata": [{"id": "meta_id", "version": "0.3.0"}], "customers": []}
    (data / "customers.json").write_text(json.dumps(source))
    before = (data / "customers.json").read_bytes()
    config = tmp_path / "parlant.yaml"
    config.write_text(
        "version: 1\n"
        f"server: {{home: {tmp_path / 'home'}}}\n"
        f"backends:\n  files: {{type: json, directory: {data}}}\n"
        "stores:\n  customers: files\n"
        "environments:\n"
        "  prod:\n"
        "    backends:\n"
        "      files: {type: snowflake, connection_name: wrong, directory: null}\n"
    )
    result = harness.cli(
        "copy", "-c", str(config), "--to-env", "prod", env={"SNOWFLAKE_HOME": str(snowflake_home)}
    )
    assert result.returncode == 2, result.stdout + result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(error_lines) == 1, result.stderr
    assert error_lines[0].startswith("backends.files: ")
    assert "Incorrect username or password was specified" in error_lines[0]
    output = result.stdout + result.stderr
    assert secret not in output and "Traceback" not in output
    assert (data / "customers.json").read_bytes() == before
