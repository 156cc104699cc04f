"""examples/sdk/main.py: p.Server with Router.from_file, started twice.

The program creates an agent, a guideline and a journey at every start; with those stores
on the (emulated) warehouse the second start must find them and create nothing new.
Ctrl-C (SIGINT) stops it, as a person would.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

from parlant.client import ParlantClient

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sdk" / "main.py"


def test_sdk_example_twice_creates_its_entities_once(harness: Any, tmp_path: Path) -> None:
    port = harness.free_port()
    argv = [
        sys.executable,
        str(EXAMPLE),
        "--set",
        f"server.port={port}",
        "--set",
        f"server.tool_service_port={harness.free_port()}",
        "--set",
        f"server.home={tmp_path / 'home'}",
        "--set",
        f"backends.warehouse.emulator={tmp_path / 'sf'}",
    ]
    counts = []
    for _ in range(2):
        server = harness.start(argv, port)
        c = ParlantClient(base_url=server.base_url, timeout=60)
        agents = c.agents.list()
        counts.append(
            (
                [a.name for a in agents],
                len(c.guidelines.list()),
                [j.title for j in c.journeys.list()],
            )
        )
        assert server.stop(signal.SIGINT) == 0, server.tail()
    # The journey adds a guideline for its condition: two guidelines in all.
    assert counts[0] == (["Otto"], 2, ["Return an item"])
    assert counts[1] == counts[0]
