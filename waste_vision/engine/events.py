"""The events database: every counted item, and every correction of one, as a row in SQLite.

Why: the tally in memory ends with the process; a kiosk's owner wants to know what it saw
last week, a fleet wants it sent on, and an operator's correction should be kept for the
site profile. One SQLite file (stdlib ``sqlite3``) in the user's data folder
(``data_dir()``, ``WASTE_VISION_DATA_DIR`` overrides it) or where ``--events`` says.

* **Never on the frame path**: ``EventSink.write`` only builds small records and puts them
  on a bounded queue (``put_nowait``); a writer thread commits them. A queue that is full
  (the disk stalled for thousands of items) drops the newest and counts them (``dropped``).
* **Safe under kill -9 and power loss**: WAL journal with ``synchronous=FULL``, one commit per
  batch; a committed event is in the file whatever happens to the process afterwards.
* **Bounded**: rows older than the retention (``keep_days``, 365 by default) are deleted when
  the writer starts and every hour; crop photos (``--save-crops``) live in one folder capped
  in size, oldest removed first, and only crops this program wrote and the database names
  are ever removed.
* **Corrections are events too**: ``kind`` is ``item`` or ``correction``; a correction names
  the event it corrects (``corrects``) and carries the right label; statistics and the
  history use the newest correction of an item.
* **Outbox**: ``sent`` is NULL where no broker was configured when the row was written, 0
  while it waits for the broker, 1 once the broker acknowledged it (``engine/mqtt.py``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from waste_vision.engine.frames import FrameResult, RegionResult
from waste_vision.errors import UserError
from waste_vision.labels import Bin, base_bin

if TYPE_CHECKING:
    from waste_vision.model.cascade import Cascade

log = logging.getLogger(__name__)

EVENTS_FILE = "events.sqlite"
SCHEMA_VERSION = 1
DEFAULT_KEEP_DAYS = 365.0
QUEUE_SIZE = 1000  # events waiting for the writer; a kiosk counts a few per minute
CROPS_MAX_BYTES = 512 * 2**20  # the crop folder's cap
CROP_PREFIX = "wv-crop-"  # the crop photos this program writes (the only ones it removes)
PRUNE_EVERY_S = 3600.0
CLOSE_TIMEOUT_S = 10.0


class EventKind(StrEnum):
    """What a row is: an item counted, or an operator's correction of one."""

    ITEM = "item"
    CORRECTION = "correction"


class Period(StrEnum):
    """The buckets statistics are totalled in (local time; weeks start on Monday)."""

    HOUR = "hour"
    DAY = "day"
    WEEK = "week"


def data_dir() -> Path:
    """The user's data folder (platformdirs; ``WASTE_VISION_DATA_DIR`` overrides it)."""
    override = os.environ.get("WASTE_VISION_DATA_DIR")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("waste-vision", appauthor=False))


def default_events_path() -> Path:
    return data_dir() / EVENTS_FILE


def default_crops_dir(events: Path) -> Path:
    """Crops beside their database: ``events.sqlite`` -> ``events-crops/``."""
    return events.with_name(events.stem + "-crops")


@dataclass(frozen=True)
class Event:
    """One row. ``time`` is Unix seconds (UTC); ``box`` is x, y, w, h in frame pixels."""

    kind: EventKind
    time: float
    site: str
    source: str
    label: str
    bin: str | None
    score: float | None = None
    stage1_label: str | None = None
    stage1_score: float | None = None
    stage2_label: str | None = None
    stage2_score: float | None = None
    box: tuple[int, int, int, int] | None = None
    item_id: int | None = None
    position_s: float | None = None  # the position in a file, when the source is one
    model_version: str | None = None
    profile_version: str | None = None
    crop: str | None = None  # the crop photo's path (--save-crops)
    corrects: int | None = None  # a correction: the id of the event it corrects
    id: int | None = None  # given by the database
    sent: int | None = None  # outbox: None not for sending, 0 waiting, 1 delivered

    def as_dict(self) -> dict:
        """The JSON form (``stats``, MQTT payloads): what a consumer needs, no local paths."""
        return {
            "id": self.id,
            "kind": str(self.kind),
            "time": round(self.time, 3),
            "iso_time": datetime.fromtimestamp(self.time).astimezone().isoformat(),
            "site": self.site,
            "source": self.source,
            "label": self.label,
            "bin": self.bin,
            "score": _round(self.score),
            "stage1": None
            if self.stage1_label is None
            else {"label": self.stage1_label, "score": _round(self.stage1_score)},
            "stage2": None
            if self.stage2_label is None
            else {"label": self.stage2_label, "score": _round(self.stage2_score)},
            "box": list(self.box) if self.box else None,
            "item_id": self.item_id,
            "position_s": _round(self.position_s),
            "model_version": self.model_version,
            "profile_version": self.profile_version,
            "corrects": self.corrects,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@dataclass(frozen=True)
class Total:
    """Items of one label (in one bin) counted in one period (``period``: its start)."""

    period: str
    label: str
    bin: str | None
    count: int

    def as_dict(self) -> dict:
        return {"period": self.period, "label": self.label, "bin": self.bin, "count": self.count}


SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,           -- the order events were written in
    kind TEXT NOT NULL,               -- 'item' or 'correction'
    time REAL NOT NULL,               -- Unix seconds, UTC
    site TEXT NOT NULL,
    source TEXT NOT NULL,
    label TEXT NOT NULL,
    bin TEXT,                         -- organic, recyclable, residual, hazardous (or NULL)
    score REAL,                       -- the final label's confidence
    stage1_label TEXT, stage1_score REAL,
    stage2_label TEXT, stage2_score REAL,
    box_x INTEGER, box_y INTEGER, box_w INTEGER, box_h INTEGER,
    item_id INTEGER,
    position_s REAL,
    model_version TEXT,
    profile_version TEXT,
    crop TEXT,                        -- path of the crop photo
    crop_bytes INTEGER,
    corrects INTEGER REFERENCES events(id) ON DELETE CASCADE,
    sent INTEGER                      -- NULL not for sending, 0 waiting, 1 delivered
);
CREATE INDEX IF NOT EXISTS events_by_time ON events(time);
CREATE INDEX IF NOT EXISTS events_by_label ON events(kind, label, bin, time, site);
CREATE INDEX IF NOT EXISTS events_outbox ON events(id) WHERE sent = 0;
CREATE INDEX IF NOT EXISTS events_corrects ON events(corrects) WHERE corrects IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_crops ON events(id) WHERE crop IS NOT NULL;
"""

_FIELDS = (
    "kind, time, site, source, label, bin, score, stage1_label, stage1_score, stage2_label, "
    "stage2_score, box_x, box_y, box_w, box_h, item_id, position_s, model_version, "
    "profile_version, crop, crop_bytes, corrects, sent"
)
_SELECT = (
    "SELECT id, kind, time, site, source, label, bin, score, stage1_label, stage1_score, "
    "stage2_label, stage2_score, box_x, box_y, box_w, box_h, item_id, position_s, "
    "model_version, profile_version, crop, corrects, sent FROM events"
)


def _row_event(row: tuple) -> Event:
    box = None if row[12] is None else (row[12], row[13], row[14], row[15])
    return Event(
        kind=EventKind(row[1]),
        time=row[2],
        site=row[3],
        source=row[4],
        label=row[5],
        bin=row[6],
        score=row[7],
        stage1_label=row[8],
        stage1_score=row[9],
        stage2_label=row[10],
        stage2_score=row[11],
        box=box,
        item_id=row[16],
        position_s=row[17],
        model_version=row[18],
        profile_version=row[19],
        crop=row[20],
        corrects=row[21],
        sent=row[22],
        id=row[0],
    )


def _event_row(e: Event, crop_bytes: int | None = None) -> tuple:
    x, y, w, h = e.box if e.box is not None else (None, None, None, None)
    return (
        str(e.kind),
        e.time,
        e.site,
        e.source,
        e.label,
        e.bin,
        e.score,
        e.stage1_label,
        e.stage1_score,
        e.stage2_label,
        e.stage2_score,
        x,
        y,
        w,
        h,
        e.item_id,
        e.position_s,
        e.model_version,
        e.profile_version,
        e.crop,
        crop_bytes,
        e.corrects,
        e.sent,
    )


def period_start(t: float, by: Period) -> str:
    """The start of the period ``t`` falls in, local time: ``2026-05-04 13:00`` for an
    hour, ``2026-05-04`` for a day, the Monday ``2026-05-04`` for a week."""
    local = datetime.fromtimestamp(t)
    if by is Period.HOUR:
        return local.strftime("%Y-%m-%d %H:00")
    if by is Period.WEEK:
        local -= timedelta(days=local.weekday())
    return local.strftime("%Y-%m-%d")


def period_ranges(lo: float, end: float, by: Period) -> list[tuple[float, float, str]]:
    """``(start, stop, name)`` of each local period over ``[lo, end)``, in order, each
    range starting where the one before stopped (DST changes included)."""
    first = datetime.fromtimestamp(lo).replace(minute=0, second=0, microsecond=0)
    step = timedelta(hours=1)
    if by is not Period.HOUR:
        first = first.replace(hour=0)
        step = timedelta(days=1 if by is Period.DAY else 7)
        if by is Period.WEEK:
            first -= timedelta(days=first.weekday())
    ranges = []
    start = first
    while start.timestamp() < end:
        stop = start + step
        name = start.strftime("%Y-%m-%d %H:00" if by is Period.HOUR else "%Y-%m-%d")
        ranges.append((max(start.timestamp(), lo), min(stop.timestamp(), end), name))
        start = stop
    return ranges


class EventStore:
    """One connection to an events database: use it from one thread (the writer, the
    publisher, the command and the window each open their own; WAL lets them share)."""

    def __init__(self, path: Path, *, create: bool = True, readonly: bool = False):
        self.path = Path(path).expanduser()
        self.db = self._open(create, readonly)

    def _open(self, create: bool, readonly: bool) -> sqlite3.Connection:
        path = self.path
        if path.is_dir():
            raise UserError(
                f"--events {path}: it is a folder; give a file name, e.g. events.sqlite"
            )
        if not path.exists():
            if not create:
                raise UserError(
                    f"no events database at {path}; run 'waste-vision annotate' or the app "
                    "first (they write one), or give another with --events"
                )
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(
                    f"cannot make the folder {path.parent} for the events database "
                    f"({exc.strerror or exc}); give another with --events"
                ) from None
        try:
            if readonly:
                db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
            else:
                db = sqlite3.connect(path, timeout=10, check_same_thread=False)
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.Error as exc:
            raise UserError(
                f"--events {path}: not an events database ({exc}); give another file name"
            ) from None
        if tables and "events" not in tables:
            db.close()
            raise UserError(
                f"--events {path}: an SQLite file of something else (tables "
                f"{', '.join(sorted(tables))}); it is left as it is: give another file name"
            )
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if tables and version > SCHEMA_VERSION:
            db.close()
            raise UserError(
                f"--events {path} was written by a newer waste-vision (schema {version}); "
                "update waste-vision or give another file"
            )
        if not readonly:
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")  # a commit is on the disk when it returns
                db.execute("PRAGMA foreign_keys=ON")
                db.executescript(SCHEMA)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                db.commit()
            except sqlite3.Error as exc:
                db.close()
                raise UserError(
                    f"cannot write the events database {path} ({exc}); give another "
                    "file with --events"
                ) from None
        return db

    def close(self) -> None:
        self.db.close()

    # -- writing ----------------------------------------------------------------------------

    def add(self, events: Sequence[Event], crop_bytes: Sequence[int | None] = ()) -> list[int]:
        """Insert ``events`` in one transaction (committed when this returns); their ids."""
        sizes = list(crop_bytes) or [None] * len(events)
        ids = []
        with self.db:
            for event, size in zip(events, sizes, strict=True):
                cur = self.db.execute(
                    f"INSERT INTO events ({_FIELDS}) VALUES ({', '.join('?' * 23)})",
                    _event_row(event, size),
                )
                ids.append(int(cur.lastrowid or 0))
        return ids

    def correction(self, event_id: int, label: str, bin: str | None, at: float) -> Event:
        """The correction of item ``event_id`` (not written): its site, source and models,
        the right label; raises UserError for an unknown id or one that is a correction."""
        original = self.get(event_id)
        if original is None or original.kind is not EventKind.ITEM:
            raise UserError(f"event {event_id}: no counted item with that id to correct")
        return replace(
            original,
            kind=EventKind.CORRECTION,
            time=at,
            label=label,
            bin=bin,
            score=None,
            crop=None,
            corrects=event_id,
            id=None,
            sent=None if original.sent is None else 0,
        )

    def mark_sent(self, ids: Iterable[int]) -> None:
        with self.db:
            self.db.executemany("UPDATE events SET sent = 1 WHERE id = ?", [(i,) for i in ids])

    def prune(self, before: float, crops: Path | None) -> int:
        """Delete the rows older than ``before`` (and their crop photos); how many."""
        removed = self._remove_crops(
            "SELECT id, crop FROM events WHERE crop IS NOT NULL AND time < ?", (before,), crops
        )
        with self.db:
            n = self.db.execute("DELETE FROM events WHERE time < ?", (before,)).rowcount
        log.debug("events: %d row(s) and %d crop(s) past the retention removed", n, removed)
        return n

    def cap_crops(self, crops: Path, max_bytes: int) -> int:
        """Remove the oldest crop photos until the folder's crops take at most ``max_bytes``
        (90% of it, so this is not run for every new crop); how many were removed."""
        total = self.db.execute("SELECT COALESCE(SUM(crop_bytes), 0) FROM events").fetchone()[0]
        if total <= max_bytes:
            return 0
        rows = self.db.execute(
            "SELECT id, crop, crop_bytes FROM events WHERE crop IS NOT NULL ORDER BY id"
        )
        drop, target = [], total - int(max_bytes * 0.9)
        for event_id, path, size in rows:
            if target <= 0:
                break
            drop.append((event_id, path))
            target -= size or 0
        return self._forget_crops(drop, crops)

    def _remove_crops(self, sql: str, args: tuple, crops: Path | None) -> int:
        return self._forget_crops(list(self.db.execute(sql, args)), crops)

    def _forget_crops(self, rows: list[tuple[int, str]], crops: Path | None) -> int:
        """Delete crop files this program wrote (in ``crops``, named ``wv-crop-*``); never
        another file a row might name."""
        for _, path in rows:
            p = Path(path)
            if crops is not None and p.parent == crops and p.name.startswith(CROP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
        with self.db:
            self.db.executemany(
                "UPDATE events SET crop = NULL, crop_bytes = NULL WHERE id = ?",
                [(r[0],) for r in rows],
            )
        return len(rows)

    # -- reading ----------------------------------------------------------------------------

    def get(self, event_id: int) -> Event | None:
        row = self.db.execute(f"{_SELECT} WHERE id = ?", (event_id,)).fetchone()
        return _row_event(row) if row else None

    def count(self, kind: EventKind = EventKind.ITEM) -> int:
        return self.db.execute("SELECT COUNT(*) FROM events WHERE kind = ?", (kind,)).fetchone()[0]

    def events(self, kind: EventKind | None = None) -> list[Event]:
        """Every row in the order written (tests, small exports)."""
        if kind is None:
            return [_row_event(r) for r in self.db.execute(f"{_SELECT} ORDER BY id")]
        rows = self.db.execute(f"{_SELECT} WHERE kind = ? ORDER BY id", (kind,))
        return [_row_event(r) for r in rows]

    def recent(self, limit: int = 100, site: str | None = None) -> list[Event]:
        """The newest counted items first, each with its newest correction's label and bin
        (the correction's id in ``corrects``: who changed it)."""
        # '+kind': not through the (kind, label, ...) index, which would read every item and
        # sort them; walking ids backwards stops after ``limit`` rows
        where, args = "+kind = 'item'", []
        if site is not None:
            where += " AND site = ?"
            args.append(site)
        rows = self.db.execute(f"{_SELECT} WHERE {where} ORDER BY id DESC LIMIT ?", (*args, limit))
        items = [_row_event(r) for r in rows]
        fixes = self._corrections([e.id for e in items if e.id is not None])
        return [
            replace(e, label=fixes[e.id][0], bin=fixes[e.id][1], corrects=fixes[e.id][2])
            if e.id in fixes
            else e
            for e in items
        ]

    def _corrections(self, ids: list[int]) -> dict[int, tuple[str, str | None, int]]:
        """item id -> (label, bin, correction id) of its newest correction."""
        found: dict[int, tuple[str, str | None, int]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self.db.execute(
                "SELECT corrects, label, bin, id FROM events WHERE +kind = 'correction' AND "
                f"corrects IN ({', '.join('?' * len(chunk))}) ORDER BY id",
                chunk,
            )
            for corrects, label, bin_, cid in rows:
                found[corrects] = (label, bin_, cid)
        return found

    def unsent(self, limit: int = 100, after: int = 0) -> list[Event]:
        """The outbox: rows waiting for the broker, oldest first."""
        rows = self.db.execute(
            f"{_SELECT} WHERE sent = 0 AND id > ? ORDER BY id LIMIT ?", (after, limit)
        )
        return [_row_event(r) for r in rows]

    def unsent_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM events WHERE sent = 0").fetchone()[0]

    def totals(
        self,
        by: Period = Period.DAY,
        since: float | None = None,
        until: float | None = None,
        site: str | None = None,
    ) -> list[Total]:
        """Items counted per period, label and bin over ``[since, until)`` (Unix seconds),
        corrections applied (an item counts under its newest correction's label, in the
        period it was counted in)."""
        where, args = ["kind = 'item'"], list[float | str]()
        if since is not None:
            where.append("time >= ?")
            args.append(since)
        if until is not None:
            where.append("time < ?")
            args.append(until)
        if site is not None:
            where.append("site = ?")
            args.append(site)
        by = Period(by)
        counts: dict[tuple[str, str, str | None], int] = {}
        lo, hi = self.db.execute("SELECT MIN(time), MAX(time) FROM events").fetchone()
        lo = lo if since is None or lo is None else max(lo, since)
        end = None if hi is None else math.nextafter(hi, math.inf)  # exclusive, as until
        end = end if until is None or end is None else min(end, until)
        if lo is not None and end is not None and lo < end:
            # one range per local period (DST shifts included): each is a range search of
            # the time index, so a year of a million items is read once, in order
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS periods(start, stop, name)")
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS labels(label, bin)")
            self.db.execute("DELETE FROM temp.periods")
            self.db.execute("DELETE FROM temp.labels")
            self.db.executemany(
                "INSERT INTO temp.periods VALUES (?, ?, ?)", period_ranges(lo, end, by)
            )
            self.db.execute(
                "INSERT INTO temp.labels SELECT DISTINCT label, bin FROM events "
                "INDEXED BY events_by_label WHERE kind = 'item'"
            )
            site_sql = "" if site is None else " AND e.site = :site"
            # one count per period and label, each a range of the (kind, label, bin, time)
            # index: no sorting, a million items a year read once
            rows = self.db.execute(
                "SELECT p.name, l.label, l.bin, (SELECT COUNT(*) FROM events AS e INDEXED BY "
                "events_by_label WHERE e.kind = 'item' AND e.label = l.label AND "
                f"e.bin IS l.bin AND e.time >= p.start AND e.time < p.stop{site_sql}) "
                "FROM temp.labels AS l, temp.periods AS p",
                {"site": site},
            )
            for name, label, bin_, n in rows:
                if n:
                    counts[(name, label, bin_)] = counts.get((name, label, bin_), 0) + n
        # corrections: move each corrected item from its label to the newest correction's
        fix_where = " AND ".join(f"e.{w}" for w in where)
        fixes = self.db.execute(
            "SELECT e.time, e.label, e.bin, c.label, c.bin "
            "FROM events AS c JOIN events AS e ON e.id = c.corrects "
            f"WHERE c.kind = 'correction' AND {fix_where} AND c.id = (SELECT MAX(id) FROM "
            "events WHERE corrects = c.corrects AND kind = 'correction')",
            args,
        ).fetchall()
        for t, old, old_bin, new, new_bin in fixes:
            period = period_start(t, by)
            counts[(period, old, old_bin)] -= 1
            counts[(period, new, new_bin)] = counts.get((period, new, new_bin), 0) + 1
        return [
            Total(p, label, b, n)
            for (p, label, b), n in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1]))
            if n > 0
        ]


# -- from a classified frame to rows ---------------------------------------------------------


def bin_of(label: str, region: RegionResult | None) -> str | None:
    """The bin of a counted label: the region's (a site's taught class names its own) where
    the region says it, else the base classes' rule."""
    if region is not None and region.result.label == label and region.result.bin is not None:
        return str(region.result.bin)
    found: Bin | None = base_bin(label)
    return None if found is None else str(found)


def frame_events(
    result: FrameResult,
    *,
    site: str,
    source: str,
    model_version: str | None,
    profile_version: str | None,
    outbox: bool,
    now: float | None = None,
) -> list[Event]:
    """The rows for what ``result`` counted (usually none): the counted label, the scores
    and box of the frame it was counted at."""
    at = time.time() if now is None else now
    regions: Sequence[RegionResult | None] = result.counted_regions
    if len(regions) != len(result.counted):  # a sink fed by something else than the pipeline
        regions = [None] * len(result.counted)
    events = []
    for label, region in zip(result.counted, regions, strict=True):
        r = region.result if region is not None else None
        events.append(
            Event(
                kind=EventKind.ITEM,
                time=at,
                site=site,
                source=source,
                label=label,
                bin=bin_of(label, region),
                score=None if r is None else float(r.score),
                stage1_label=None if r is None else r.stage1.label,
                stage1_score=None if r is None else float(r.stage1.score),
                stage2_label=None if r is None or r.stage2 is None else r.stage2.label,
                stage2_score=None if r is None or r.stage2 is None else float(r.stage2.score),
                box=None if region is None else _int_box(region.box),
                item_id=None if region is None else region.item_id,
                position_s=result.frame.position_s,
                model_version=model_version,
                profile_version=profile_version,
                sent=0 if outbox else None,
            )
        )
    return events


def _int_box(box: tuple) -> tuple[int, int, int, int]:
    x, y, w, h = box  # plain ints: sqlite3 takes no numpy integers
    return int(x), int(y), int(w), int(h)


# -- the writer thread -----------------------------------------------------------------------


@dataclass
class _Batch:
    events: list[Event]
    crops: list[np.ndarray | None]
    done: Future | None = None  # for a caller that wants the ids (a correction)


class EventWriter:
    """The one thread that writes a database: a bounded queue in, commits out.

    ``on_commit`` callbacks run in the writer thread after each commit with the new ids
    (the MQTT publisher is woken by one; keep them quick)."""

    def __init__(
        self,
        path: Path,
        *,
        keep_days: float = DEFAULT_KEEP_DAYS,
        crops: Path | None = None,
        crops_max_bytes: int = CROPS_MAX_BYTES,
        queue_size: int = QUEUE_SIZE,
    ):
        if not keep_days > 0:
            raise UserError(f"--events-keep-days {keep_days}: give a number of days above 0")
        self.path = Path(path).expanduser()
        self.keep_s = keep_days * 86400.0
        self.crops = None if crops is None else Path(crops).expanduser()
        self.crops_max_bytes = crops_max_bytes
        if self.crops is not None:
            if self.crops.exists() and not self.crops.is_dir():
                raise UserError(f"--save-crops {self.crops}: it is a file; give a folder")
            try:
                self.crops.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(
                    f"--save-crops {self.crops}: cannot make the folder ({exc.strerror or exc})"
                ) from None
        EventStore(self.path).close()  # the checks (and the schema) before any frame
        self.on_commit: list[Callable[[list[int]], None]] = []
        self.written = 0
        self.dropped = 0  # events a full queue had no room for
        self.error: str | None = None
        self._queue: queue.Queue[_Batch | None] = queue.Queue(maxsize=queue_size)
        self._crop_n = 0
        self._thread = threading.Thread(target=self._work, name="events writer", daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def put(self, events: list[Event], crops: list[np.ndarray | None] | None = None) -> bool:
        """Queue rows for writing without waiting; False (and counted) if there is no room."""
        try:
            self._queue.put_nowait(_Batch(events, crops or [None] * len(events)))
            return True
        except queue.Full:
            self.dropped += len(events)
            log.warning("events queue full: %d event(s) dropped", len(events))
            return False

    def submit(self, event: Event) -> Future:
        """Queue one row (a correction) and get a future of its id, set once committed."""
        done: Future = Future()
        try:
            self._queue.put(_Batch([event], [None], done), timeout=5)
        except queue.Full:
            done.set_exception(UserError("the events database is not keeping up; try again"))
        return done

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Write what is queued, then end the thread."""
        if self._thread.is_alive():
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=timeout)
            self._thread.join(timeout)

    def _work(self) -> None:
        store = EventStore(self.path)
        last_prune = 0.0
        try:
            while True:
                if time.monotonic() - last_prune > PRUNE_EVERY_S:
                    last_prune = time.monotonic()
                    self._prune(store)
                try:
                    batch = self._queue.get(timeout=1.0)
                except queue.Empty:
                    continue
                batches, end = [], batch is None
                if batch is not None:
                    batches.append(batch)
                while not end:  # whatever else is waiting goes into the same commit
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        end = True
                    else:
                        batches.append(more)
                if batches:
                    self._write(store, batches)
                if end:
                    return
        finally:
            store.close()

    def _write(self, store: EventStore, batches: list[_Batch]) -> None:
        events: list[Event] = []
        sizes: list[int | None] = []
        for batch in batches:
            for event, crop in zip(batch.events, batch.crops, strict=True):
                path, size = self._save_crop(event, crop)
                events.append(replace(event, crop=path) if path else event)
                sizes.append(size)
        try:
            ids = store.add(events, sizes)
        except sqlite3.Error as exc:
            self.error = f"cannot write the events database {self.path}: {exc}"
            log.warning("%s", self.error)
            for batch in batches:
                if batch.done is not None:
                    batch.done.set_exception(UserError(self.error))
            return
        self.written += len(ids)
        n = 0
        for batch in batches:
            if batch.done is not None:
                batch.done.set_result(ids[n])
            n += len(batch.events)
        for callback in list(self.on_commit):
            try:
                callback(ids)
            except Exception:
                log.exception("events on_commit callback failed")
        if self.crops is not None and any(sizes):
            store.cap_crops(self.crops, self.crops_max_bytes)

    def _save_crop(self, event: Event, crop: np.ndarray | None) -> tuple[str | None, int | None]:
        if crop is None or self.crops is None or crop.size == 0:
            return None, None
        import cv2

        ok, data = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        if not ok:
            return None, None
        self._crop_n += 1
        stamp = datetime.fromtimestamp(event.time).strftime("%Y%m%d-%H%M%S")
        path = self.crops / f"{CROP_PREFIX}{stamp}-{os.getpid()}-{self._crop_n}.jpg"
        try:
            path.write_bytes(data.tobytes())
        except OSError as exc:
            log.warning("cannot save the crop %s: %s", path, exc)
            return None, None
        return str(path), len(data)

    def _prune(self, store: EventStore) -> None:
        try:
            n = store.prune(time.time() - self.keep_s, self.crops)
            if n:
                log.info("events: %d row(s) older than the retention removed", n)
        except sqlite3.Error as exc:
            log.warning("events: pruning %s failed: %s", self.path, exc)


class EventSink:
    """A pipeline ``Sink``: each counted item becomes an event for the writer thread.

    ``write`` is on the frame path: it builds the rows (only on frames that counted
    something; nothing otherwise) and queues them without waiting."""

    def __init__(
        self,
        writer: EventWriter,
        *,
        site: str,
        source: str,
        cascade: Cascade | None = None,
        model_version: str | None = None,
        profile_version: str | None = None,
        outbox: bool = False,
        owns_writer: bool = True,
    ):
        self.writer = writer
        self.cascade = cascade  # its model and site profile versions are read per event
        self.site = site
        self.source = source  # the window changes it when the source changes
        self.model_version = model_version
        self.profile_version = profile_version
        self.outbox = outbox  # rows wait in the outbox for the MQTT publisher
        self.owns_writer = owns_writer
        self.on_counted: list[Callable[[list[Event]], None]] = []

    def write(self, result: FrameResult, annotated: np.ndarray) -> None:
        if not result.counted:
            return
        model, profile = self.model_version, self.profile_version
        if self.cascade is not None:  # a taught profile can change while it runs
            model = self.cascade.model_version
            profile = getattr(self.cascade.profile, "version", None) or None
        events = frame_events(
            result,
            site=self.site,
            source=self.source,
            model_version=model,
            profile_version=profile,
            outbox=self.outbox,
        )
        crops: list[np.ndarray | None] = [None] * len(events)
        if self.writer.crops is not None:
            image = result.frame.image  # never modified after capture: the view is safe
            crops = [
                None
                if e.box is None
                else image[e.box[1] : e.box[1] + e.box[3], e.box[0] : e.box[0] + e.box[2]]
                for e in events
            ]
        self.writer.put(events, crops)

    def close(self) -> None:
        if self.owns_writer:
            self.writer.close()


def default_site() -> str:
    """The kiosk's name when none is given: the machine's host name."""
    import socket

    return socket.gethostname() or "kiosk"
