"""Whatever the file holds, loading ends in a config or a ConfigError of one line per mistake,
never anything else."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parlant_router.config.loading import load_config
from parlant_router.errors import ConfigError

PROJECT_CONFIG = (Path(__file__).resolve().parents[2] / "parlant.yaml").read_text(encoding="utf-8")
NOISE = st.sampled_from(list(":{}[]-#&*!|>'\"%@`,?\t\n $~\\\x00\x85\u2028a1"))
EDITS = st.lists(
    st.tuples(st.integers(0, len(PROJECT_CONFIG) - 1), st.integers(0, 2), NOISE),
    min_size=1,
    max_size=6,
)


def mutate(text: str, edits: list[tuple[int, int, str]]) -> str:
    chars = list(text)
    for where, operation, character in edits:
        where %= max(len(chars), 1)
        if operation == 0 and chars:
            chars[where] = character
        elif operation == 1:
            chars.insert(where, character)
        elif chars:
            del chars[where]
    return "".join(chars)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(EDITS, st.sampled_from([None, "prod"]))
def test_damaged_project_config(
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    edits: list[tuple[int, int, str]],
    env: str | None,
) -> None:
    for name in ("ACCOUNT", "USER", "PASSWORD", "WAREHOUSE", "DATABASE", "SCHEMA"):
        monkeypatch.setenv(f"SNOWFLAKE_{name}", "value-of-" + name.lower())
    (workdir / "parlant.yaml").write_text(mutate(PROJECT_CONFIG, edits), encoding="utf-8")
    try:
        load_config("parlant.yaml", env=env)
    except ConfigError as error:
        message = str(error)
        assert message == "\n".join(str(issue) for issue in error.issues)
        for issue in error.issues:
            assert str(issue).startswith("parlant.yaml")
            assert "\n" not in str(issue)
        assert "value-of-password" not in message
