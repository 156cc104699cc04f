"""`copy` of vector-backed stores (`vector: snowflake`) moves their embeddings: a server on
the destination serves the same glossary terms, journeys and canned responses (signals
included) without embedding anything."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.e2e.conftest import BIN, Harness, free_port
from tests.e2e.test_replicas import client
from tests.e2e.test_vectors import (
    COUNTING_NLP,
    SHIPPED,
    Starts,
    populate,
    shipped_starts,
    snapshot,
    stop,
)


def test_a_copy_moves_the_embeddings_with_the_vector_documents(
    harness: Harness, tmp_path: Path
) -> None:
    source = shipped_starts(harness, tmp_path / "sf-source")
    server = source.start()
    populate(client(server))
    before = snapshot(client(server))
    stop(server)

    body = yaml.safe_load(SHIPPED.read_text())
    port = free_port()
    body["server"].update(
        home=str(tmp_path / "home-b"),
        port=port,
        tool_service_port=free_port(),
        nlp=COUNTING_NLP,
    )
    body["backends"]["warehouse"]["emulator"] = str(tmp_path / "sf-destination")
    destination = tmp_path / "destination.yaml"
    destination.write_text(yaml.safe_dump(body))

    copied = harness.cli(
        "copy",
        "-c",
        str(SHIPPED),
        "--set",
        f"server.home={tmp_path / 'home'}",
        "--set",
        f"backends.warehouse.emulator={tmp_path / 'sf-source'}",
        "--to-config",
        str(destination),
    )
    assert copied.returncode == 0, copied.stdout + copied.stderr
    rows = [line for line in copied.stdout.splitlines() if "vectors_glossary" in line]
    assert rows and rows[0].split("│")[-2].strip() == "yes", copied.stdout

    # Both start sequences number their embed logs from 1 under the same directory: what the
    # destination's start adds to it is what it embedded.
    embedded_by_source = source.embeds(1).document_texts
    assert embedded_by_source > 0
    starts = Starts(harness, [str(BIN / "parlant-router"), "run", "-c", str(destination)], port)
    served = starts.start()
    assert snapshot(client(served)) == before
    assert starts.embeds(1).document_texts == embedded_by_source
    assert "Embedded " not in served.log.read_text(errors="replace")
    stop(served)
