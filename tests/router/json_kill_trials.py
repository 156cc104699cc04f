"""SIGKILL a process that saves a JSON store in a loop, and look at the file it leaves.

    python -m tests.router.json_kill_trials write PATH [--plain]   # the writer (a child)
    python -m tests.router.json_kill_trials trials N [--plain] [--seed S]

The writer inserts documents 0, 1, 2, ... into one collection of PATH, through our
`AtomicJSONFileDatabase` (or Parlant's own `JSONFileDocumentDatabase` with `--plain`), and
prints each document's number once its insert returned (acknowledged). `trials` runs N
writers on fresh files, kills each at a random moment of its loop and tells what each file
held: the demonstration of the bug `--plain` has, and the test's measure of the fix.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # where `-m tests.router...` imports from
COLLECTION = "numbers"
PAYLOAD = "x" * 2000  # a few MB after a second: each save takes a while, as a real store's
# Writers that acknowledged fewer than this are killed before the trial counts.
WARM_UP = 3


async def write_forever(path: Path, plain: bool) -> None:
    from parlant.adapters.db.json_file import JSONFileDocumentDatabase
    from parlant.core.loggers import LogLevel, StdoutLogger
    from parlant.core.persistence.document_database import BaseDocument, identity_loader
    from parlant.core.tracer import LocalTracer

    from parlant_router.backends.json_atomic import AtomicJSONFileDatabase

    logger = StdoutLogger(LocalTracer(), LogLevel.CRITICAL)
    database_type = JSONFileDocumentDatabase if plain else AtomicJSONFileDatabase
    async with database_type(logger, path) as database:
        collection = await database.get_or_create_collection(
            COLLECTION, BaseDocument, identity_loader
        )
        number = 0
        while True:
            document = {
                "id": str(number),
                "version": "0.1.0",
                "creation_utc": "2026-01-01T00:00:00+00:00",
                "payload": PAYLOAD,
            }
            await collection.insert_one(document)  # type: ignore[arg-type]
            print(number, flush=True)
            number += 1


@dataclass(frozen=True)
class Trial:
    """What one killed writer acknowledged, and what its file held afterwards."""

    acknowledged: int
    outcome: str
    """`whole` (documents 0..k-1 with k >= acknowledged), `empty`, `invalid` or `lost`."""
    size: int


def file_outcome(path: Path, acknowledged: int) -> str:
    """`whole`, `empty`, `invalid` (not JSON) or `lost` (acknowledged documents missing)."""
    raw = path.read_bytes()
    if not raw:
        return "empty"
    try:
        data = json.loads(raw)
    except ValueError:
        return "invalid"
    numbers = [int(d["id"]) for d in data.get(COLLECTION, [])]
    if numbers != list(range(len(numbers))) or len(numbers) < acknowledged:
        return "lost"
    return "whole"


def kill_trial(path: Path, plain: bool, rng: random.Random, window: float) -> Trial:
    """One writer on `path`, SIGKILLed `window * rng.random()` s after its warm-up."""
    argv = [sys.executable, "-m", "tests.router.json_kill_trials", "write", str(path)]
    writer = subprocess.Popen(
        [*argv, "--plain"] if plain else argv, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert writer.stdout is not None
        for _ in range(WARM_UP):
            if not writer.stdout.readline():
                raise RuntimeError(f"the writer exited with {writer.wait()}")
        time.sleep(window * rng.random())
    finally:
        writer.send_signal(signal.SIGKILL)
        rest, _ = writer.communicate()
    acknowledged = WARM_UP + len(rest.split())
    return Trial(acknowledged, file_outcome(path, acknowledged), path.stat().st_size)


def run_trials(
    count: int, plain: bool, seed: int, directory: Path, window: float = 0.5
) -> list[Trial]:
    """`count` kill trials, each on a fresh file in `directory`."""
    rng = random.Random(seed)
    return [kill_trial(directory / f"trial-{i}.json", plain, rng, window) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["write", "trials"])
    parser.add_argument("target")
    parser.add_argument("--plain", action="store_true")
    parser.add_argument("--seed", type=int, default=random.SystemRandom().randrange(10**6))
    args = parser.parse_args()
    if args.mode == "write":
        asyncio.run(write_forever(Path(args.target), args.plain))
        return
    with tempfile.TemporaryDirectory() as directory:
        trials = run_trials(int(args.target), args.plain, args.seed, Path(directory))
    kind = "Parlant's JSONFileDocumentDatabase" if args.plain else "AtomicJSONFileDatabase"
    counts = Counter(t.outcome for t in trials)
    print(f"{kind}, {len(trials)} trials, seed {args.seed}: {dict(sorted(counts.items()))}")
    for trial in trials:
        print(f"  acknowledged {trial.acknowledged:4d}  {trial.outcome:8s} {trial.size} bytes")


if __name__ == "__main__":
    main()
