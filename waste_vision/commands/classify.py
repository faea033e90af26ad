"""``waste-vision classify``: run the cascade on image files and folders, one record per image.

Every input gets a record, failed ones with a one-line ``error``; exit code 0 when all
were classified, 1 when some failed, 2 when nothing can work (``UserError``).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, TextIO

from waste_vision.errors import UserError
from waste_vision.images import ImageReadError, iter_image_files, read_rgb
from waste_vision.model.cascade import Cascade, CascadeResult
from waste_vision.redact import redact_url
from waste_vision.resources import default_models_dir

URL_INPUT = (
    "a URL: classify reads image files and folders; for a camera or stream use "
    "waste-vision annotate URL -o OUT.mp4"
)
CSV_FIELDS = [
    "path",
    "label",
    "stage1_label",
    "stage1_score",
    "stage2_label",
    "stage2_score",
    "error",
]


def expand_inputs(paths: list[Path]) -> Iterator[tuple[str, str | None]]:
    """(path as given/joined, error) per input image; folders are searched recursively.
    A URL is an error shown without its password (``Path`` would turn ``://`` into ``:/``,
    which ``redact_url`` no longer recognises, so it is checked as given)."""
    for given in paths:
        if "://" in str(given):
            yield (redact_url(str(given)), URL_INPUT)
            continue
        path = Path(given)
        if path.is_dir():
            for found in iter_image_files(path):
                yield str(found), None
        elif path.is_file():
            yield str(path), None
        else:
            yield str(path), "no such file or folder"


def record(path: str, result: CascadeResult | None, error: str | None) -> dict:
    if result is None:
        return {"path": path, "label": None, "stage1": None, "stage2": None, "error": error}
    return {
        "path": path,
        "label": result.label,
        "stage1": result.stage1.as_dict(),
        "stage2": result.stage2.as_dict() if result.stage2 else None,
        "error": None,
    }


def classify_paths(
    cascade: Cascade, inputs: list[tuple[str, str | None]], all_stages: bool = False, progress=None
) -> Iterator[dict]:
    items = progress(inputs) if progress else inputs
    for path, error in items:
        if error is None:
            try:
                rgb = read_rgb(Path(path))
                yield record(path, cascade.classify(rgb, all_stages=all_stages), None)
                continue
            except ImageReadError as exc:
                error = str(exc)
        yield record(path, None, error)


class RecordWriter(Protocol):
    """One output format of ``classify``: a header when made, then one ``write`` a record."""

    def write(self, rec: dict) -> None: ...


class _TableWriter:
    def __init__(self, out: TextIO):
        self.out = out
        print(f"{'label':<11} {'stage 1':<18} {'stage 2':<18} path", file=out)

    def write(self, rec: dict) -> None:
        if rec["error"]:
            print(f"{'ERROR':<11} {'':<18} {'':<18} {rec['path']}: {rec['error']}", file=self.out)
            return
        s1 = f"{rec['stage1']['label']} {rec['stage1']['score']:.2f}"
        s2 = f"{rec['stage2']['label']} {rec['stage2']['score']:.2f}" if rec["stage2"] else "-"
        print(f"{rec['label']:<11} {s1:<18} {s2:<18} {rec['path']}", file=self.out)


class _JsonlWriter:
    def __init__(self, out: TextIO):
        self.out = out

    def write(self, rec: dict) -> None:
        print(json.dumps(rec), file=self.out, flush=True)


class _CsvWriter:
    def __init__(self, out: TextIO):
        self.writer = csv.DictWriter(out, CSV_FIELDS, lineterminator="\n")
        self.writer.writeheader()

    def write(self, rec: dict) -> None:
        s1, s2 = rec["stage1"] or {}, rec["stage2"] or {}
        self.writer.writerow(
            {
                "path": rec["path"],
                "label": rec["label"] or "",
                "stage1_label": s1.get("label", ""),
                "stage1_score": s1.get("score", ""),
                "stage2_label": s2.get("label", ""),
                "stage2_score": s2.get("score", ""),
                "error": rec["error"] or "",
            }
        )


WRITERS: dict[str, Callable[[TextIO], RecordWriter]] = {
    "table": _TableWriter,
    "jsonl": _JsonlWriter,
    "csv": _CsvWriter,
}


def run_classify(args, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    models = args.models or default_models_dir()
    cascade = Cascade(
        models,
        backend=args.backend,
        uncertain_below=args.uncertain_below,
        int8=getattr(args, "int8", False),
    )
    if getattr(args, "profile", None) is not None:
        from waste_vision.model.profile import attach

        attach(cascade, args.profile)
    inputs = list(expand_inputs(args.paths))
    if not inputs:
        raise UserError(
            "no images found in "
            + ", ".join(redact_url(str(p)) for p in args.paths)
            + "; give image files or folders that contain images"
        )
    progress = None
    quiet = getattr(args, "quiet", 0) > getattr(args, "verbose", 0)
    if args.format == "table" and len(inputs) > 20 and sys.stderr.isatty() and not quiet:
        from tqdm import tqdm

        def progress(it):
            return tqdm(it, total=len(inputs), unit="img", file=sys.stderr)

    writer = WRITERS[args.format](out)
    failed = 0
    for rec in classify_paths(cascade, inputs, args.all_stages, progress):
        if rec["error"]:
            failed += 1
            print(f"waste-vision: {rec['path']}: {rec['error']}", file=sys.stderr)
        writer.write(rec)
    return 1 if failed else 0
