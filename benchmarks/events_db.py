"""How fast ``waste-vision stats`` is over a big events database.

Builds a database of ``--events`` N counted items (1,000,000 by default) spread over the
last year, three sites, the base labels and a few corrections, then times ``stats --by
day`` (and hour and week) over the whole range, the way the command runs it (a fresh
connection, the totals, the table). Target: ``--by day`` within 1 s.

    .venv/bin/python benchmarks/events_db.py [--events 1000000] [--db PATH] [--keep]
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

from waste_vision.commands.stats import run_stats_on
from waste_vision.engine.events import Event, EventKind, EventStore, Period

LABELS = [
    ("organic", "organic"),
    ("plastic", "recyclable"),
    ("glass", "recyclable"),
    ("metal", "recyclable"),
    ("paper", "recyclable"),
    ("cardboard", "recyclable"),
]
SITES = ["canteen", "lobby", "station-3"]


def build(path: Path, n: int, seed: int = 0) -> float:
    """Write ``n`` items (and n/1000 corrections) into ``path``; seconds taken."""
    rng = random.Random(seed)
    now = time.time()
    start = time.perf_counter()
    store = EventStore(path)
    store.db.execute("PRAGMA synchronous=OFF")  # building only: the store itself runs FULL
    batch: list[Event] = []
    times = sorted(now - rng.random() * 365 * 86400 for _ in range(n))
    for i, t in enumerate(times):
        label, bin_ = rng.choice(LABELS)
        s1 = rng.uniform(0.6, 1.0)
        batch.append(
            Event(
                EventKind.ITEM,
                t,
                rng.choice(SITES),
                "0",
                label,
                bin_,
                score=s1,
                stage1_label=bin_,
                stage1_score=s1,
                stage2_label=None if label == "organic" else label,
                stage2_score=None if label == "organic" else rng.uniform(0.5, 1.0),
                box=(rng.randrange(800), rng.randrange(400), 200, 180),
                item_id=i + 1,
                model_version="0123456789ab",
            )
        )
        if len(batch) == 50_000:
            store.add(batch)
            batch = []
    store.add(batch)
    ids = [
        r[0]
        for r in store.db.execute("SELECT id FROM events ORDER BY random() LIMIT ?", (n // 1000,))
    ]
    fixes = [store.correction(i, "plastic", "recyclable", now) for i in ids]
    store.add(fixes)
    store.close()
    return time.perf_counter() - start


def time_stats(path: Path, by: Period, repeat: int = 3) -> float:
    """The best of ``repeat`` runs of the command's body (table format), in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        with redirect_stdout(io.StringIO()):
            run_stats_on(path, by=by, since=None, until=None, site=None, fmt="table")
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--db", type=Path, default=None, help="where to build it (default: a temp folder)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    folder = tempfile.TemporaryDirectory()
    path = args.db or Path(folder.name) / "events.sqlite"
    if path.exists():
        print(f"{path} exists; give a new file", file=sys.stderr)
        return 2
    built = build(path, args.events)
    size = path.stat().st_size / 2**20
    print(f"built {args.events:,} events in {built:.1f} s ({size:.0f} MiB)")
    for by in (Period.DAY, Period.HOUR, Period.WEEK):
        print(f"stats --by {by}: {time_stats(path, by) * 1000:.0f} ms")
    if args.keep:
        print(f"kept {path}")
    else:
        folder.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
