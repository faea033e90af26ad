"""``waste-vision stats``: what was counted, per hour, day or week, from the events database.

Read-only: the database (``--events``, by default the one ``annotate`` and the app write in
the user's data folder) is opened for reading, never changed. Periods are in local time;
an item counts under its newest correction's label. ``--format table`` is for a person
(one row per period, a column per label and per bin), ``csv`` and ``json`` for a script
(one record per period, label and bin).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from waste_vision.errors import UserError

if TYPE_CHECKING:  # the parser is built on every command: the engine is imported on use
    from waste_vision.engine.events import Total

FORMATS = ("table", "csv", "json")
PERIODS = ("hour", "day", "week")  # events.Period's values
_AGO = re.compile(r"^(\d+(?:\.\d+)?)([hdw])$")
_UNITS = {"h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
TIME_HELP = (
    "a date (2026-05-04: the day's start for --since, its end for --until), a local time "
    "(2026-05-04T13:30), 'today', or a span back from now (12h, 7d, 4w)"
)


def parse_when(text: str, flag: str, *, end: bool = False, now: float | None = None) -> float:
    """A ``--since``/``--until`` value -> Unix seconds; UserError naming the flag otherwise.
    A bare date given to ``--until`` (``end``) means the end of that day."""
    now = time.time() if now is None else now
    value = text.strip().lower()
    m = _AGO.match(value)
    if m:
        return now - float(m.group(1)) * _UNITS[m.group(2)]
    if value == "today":
        day = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
        return (day + timedelta(days=1) if end else day).timestamp()
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"{flag} {text!r}: give {TIME_HELP}") from None
    if end and len(text.strip()) == 10:  # a bare date: up to the end of that day
        when += timedelta(days=1)
    return when.timestamp()


def format_table(totals: list[Total]) -> str:
    """One row per period: a column per label, then per bin, then the total."""
    labels = sorted({t.label for t in totals})
    bins = sorted({t.bin for t in totals if t.bin})
    rows: dict[str, dict[str, int]] = {}
    for t in totals:
        row = rows.setdefault(t.period, {})
        row[t.label] = row.get(t.label, 0) + t.count
        if t.bin:
            row[f"[{t.bin}]"] = row.get(f"[{t.bin}]", 0) + t.count
        row["total"] = row.get("total", 0) + t.count
    columns = ["period", *labels, *(f"[{b}]" for b in bins), "total"]
    table = [columns] + [
        [period] + [str(row.get(c, 0)) for c in columns[1:]] for period, row in rows.items()
    ]
    if len(table) > 1:
        sums = ["all"] + [
            str(sum(int(line[i]) for line in table[1:])) for i in range(1, len(columns))
        ]
        table.append(sums)
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in table
    )


def write_totals(totals: list[Total], fmt: str, out, meta: dict) -> None:
    if fmt == "json":
        out.write(json.dumps({**meta, "totals": [t.as_dict() for t in totals]}, indent=2) + "\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["period", "label", "bin", "count"])
        writer.writerows([t.period, t.label, t.bin or "", t.count] for t in totals)
    else:
        if not totals:
            out.write("no items counted in that range\n")
        else:
            out.write(format_table(totals) + "\n")


def run_stats_on(
    path: Path,
    *,
    by: str,
    since: float | None,
    until: float | None,
    site: str | None,
    fmt: str,
) -> int:
    """The command's body on a database; prints to stdout."""
    from waste_vision.engine.events import EventStore, Period

    if since is not None and until is not None and until <= since:
        raise UserError("--until is not after --since; give a later --until or an earlier --since")
    store = EventStore(path, create=False, readonly=True)
    try:
        totals = store.totals(Period(by), since, until, site)
    finally:
        store.close()
    meta = {
        "by": str(by),
        "since": None if since is None else datetime.fromtimestamp(since).isoformat(),
        "until": None if until is None else datetime.fromtimestamp(until).isoformat(),
        "site": site,
        "events": str(path),
    }
    write_totals(totals, fmt, sys.stdout, meta)
    return 0


def run_stats(args) -> int:
    from waste_vision.engine.events import default_events_path

    path = Path(args.events).expanduser() if args.events else default_events_path()
    since = parse_when(args.since, "--since") if args.since else None
    until = parse_when(args.until, "--until", end=True) if args.until else None
    return run_stats_on(path, by=args.by, since=since, until=until, site=args.site, fmt=args.format)


def _cmd_stats(args) -> int:
    return run_stats(args)


def add_parser(sub) -> argparse.ArgumentParser:
    """``stats``'s options (called from ``cli.build_parser``)."""
    stats = sub.add_parser(
        "stats",
        help="items counted per hour, day or week, from the events database",
        description="Totals by label and bin per hour, day or week (local time) from the "
        "events database annotate and the app write; corrections applied.",
    )
    stats.add_argument("--by", choices=PERIODS, default="day", help="day (default)")
    stats.add_argument("--since", default=None, metavar="WHEN", help=f"from: {TIME_HELP}")
    stats.add_argument("--until", default=None, metavar="WHEN", help=f"up to: {TIME_HELP}")
    stats.add_argument("--format", choices=FORMATS, default="table")
    stats.add_argument(
        "--events",
        type=Path,
        default=None,
        metavar="PATH",
        help="the events database (default: events.sqlite in the user's data folder, "
        "e.g. ~/.local/share/waste-vision; WASTE_VISION_DATA_DIR overrides it)",
    )
    stats.add_argument("--site", default=None, metavar="NAME", help="only this site's items")
    stats.set_defaults(func=_cmd_stats)
    return stats
