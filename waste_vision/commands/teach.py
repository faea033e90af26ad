"""``waste-vision teach``: a site profile from the command line (add, list, remove, check).

The same profile the window's Teach mode writes (``model/profile.py``); runs on LiteRT, so
the bundle can do it without TensorFlow.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from waste_vision.errors import UserError
from waste_vision.images import ImageReadError, iter_image_files, read_rgb
from waste_vision.labels import Bin
from waste_vision.model.cascade import Cascade
from waste_vision.model.profile import (
    SiteProfile,
    base_labels,
    check_class_name,
    photo_files,
)
from waste_vision.resources import default_models_dir


def add_parser(sub) -> None:
    teach = sub.add_parser(
        "teach",
        help="teach a site profile photos from your own camera (add, list, remove, check)",
        description="A site profile is a folder of photos from one installation's camera; "
        "classify, annotate and app use it with --profile PROFILE.",
    )
    actions = teach.add_subparsers(dest="teach_action", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="add photos (files or folders) of one class")
    add.add_argument("profile", type=Path, metavar="PROFILE")
    add.add_argument("label", metavar="CLASS", help="a base class or a new one (a simple word)")
    add.add_argument("paths", type=Path, nargs="+", metavar="PATH")
    add.add_argument(
        "--bin",
        choices=[b.value for b in Bin],
        default=None,
        help="the bin a new class goes in (required for a class the models do not have)",
    )
    add.set_defaults(func=_cmd_add)

    show = actions.add_parser("list", help="the classes, their bins and photo counts")
    show.add_argument("profile", type=Path, metavar="PROFILE")
    show.add_argument("--json", action="store_true", help="as JSON")
    show.set_defaults(func=_cmd_list)

    remove = actions.add_parser("remove", help="remove photos of a class, or the whole class")
    remove.add_argument("profile", type=Path, metavar="PROFILE")
    remove.add_argument("label", metavar="CLASS")
    remove.add_argument("photos", nargs="*", metavar="PHOTO", help="file names as 'list' shows")
    remove.add_argument("--all", action="store_true", help="the class and all its photos")
    remove.set_defaults(func=_cmd_remove)

    check = actions.add_parser(
        "check",
        help="leave-one-out accuracy of the taught photos; with --against, accuracy on a "
        "folder of class sub-folders with and without the profile",
    )
    check.add_argument("profile", type=Path, metavar="PROFILE")
    check.add_argument("--against", type=Path, default=None, metavar="FOLDER")
    check.add_argument("--json", action="store_true", help="as JSON")
    check.set_defaults(func=_cmd_check)

    for parser in (add, check):
        parser.add_argument("--models", type=Path, default=None, help="models folder")
        parser.add_argument("--int8", action="store_true", help="use the int8 fused model")


def _progress(items: list, unit: str, args) -> list:
    """A progress bar on the terminal for more than 20 photos (not when piped or -q)."""
    quiet = args is not None and getattr(args, "quiet", 0) > getattr(args, "verbose", 0)
    if len(items) <= 20 or quiet or not sys.stderr.isatty():
        return items
    from tqdm import tqdm

    return tqdm(items, unit=unit, file=sys.stderr)


def _cascade(args) -> Cascade:
    return Cascade(args.models or default_models_dir(), backend="litert", int8=args.int8)


def _cmd_add(args) -> int:
    check_class_name(args.label)
    profile = SiteProfile.open(args.profile, create=True)
    cascade = _cascade(args)
    bin_ = profile.bin_for(args.label, args.bin, base_labels(cascade))
    files = photo_files(args.paths)
    missing = [p for p in args.paths if not p.exists()]
    added = failed = 0
    with profile.batch(cascade):  # the embeddings cache is written once, not once a photo
        for path in _progress(files, "photos", args):
            if not path.exists():
                continue
            try:
                profile.add_file(args.label, bin_, path, cascade)
                added += 1
            except ImageReadError as exc:
                failed += 1
                print(f"waste-vision: {path}: skipped ({exc})", file=sys.stderr)
    for path in missing:
        failed += 1
        print(f"waste-vision: {path}: skipped (no such file or folder)", file=sys.stderr)
    if not added:
        raise UserError(
            f"no photo was added to {args.label!r} (of {len(files)} given); "
            "give readable photos or folders of photos"
        )
    count = profile.counts()[args.label]
    print(
        f"{args.profile}: {added} photo(s) added to {args.label} ({bin_}); "
        f"it now has {count}" + (f"; {failed} skipped" if failed else "")
    )
    return 1 if failed else 0


def _cmd_list(args) -> int:
    profile = SiteProfile.open(args.profile)
    rows = [
        {
            "class": label,
            "bin": str(profile.classes[label]),
            "photos": [Path(p.file).name for p in profile.photos if p.label == label],
        }
        for label in sorted(profile.classes)
    ]
    if args.json:
        print(
            json.dumps({"profile": str(args.profile), "version": profile.version, "classes": rows})
        )
        return 0
    print(f"{'class':<16}{'bin':<12}photos")
    for row in rows:
        print(f"{row['class']:<16}{row['bin']:<12}{len(row['photos'])}")
    return 0


def _cmd_remove(args) -> int:
    if bool(args.photos) == bool(args.all):
        raise UserError("name the photos to remove, or --all for the whole class (not both)")
    profile = SiteProfile.open(args.profile)
    gone = profile.remove(args.label, args.photos, everything=args.all)
    print(f"{args.profile}: {gone} photo(s) of {args.label} removed")
    return 0


def _against(folder: Path, cascade: Cascade, head) -> dict:
    """Accuracy on FOLDER/<class>/photos, base cascade alone vs with the profile."""
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder; give a folder of class sub-folders")
    rows = []
    photos = [
        (sub, path)
        for sub in sorted(p for p in folder.iterdir() if p.is_dir())
        for path in iter_image_files(sub)
    ]
    for sub, path in _progress(photos, "photos", None):
        try:
            rgb = read_rgb(path)
        except ImageReadError as exc:
            print(f"waste-vision: {path}: skipped ({exc})", file=sys.stderr)
            continue
        base = cascade.classify(rgb, profile=False)
        taught = cascade.classify(rgb)
        rows.append((sub.name, base.label, taught.label))
    if not rows:
        raise UserError(f"{folder} has no class sub-folders with photos")
    truth = np.array([r[0] for r in rows])
    out: dict = {"photos": len(rows)}
    for name, column in (("base", 1), ("profile", 2)):
        labels = np.array([r[column] for r in rows])
        out[name] = {"accuracy": round(float(np.mean(labels == truth)), 4)}
    out["per_class"] = {
        label: {
            "photos": int(np.sum(truth == label)),
            "base": round(
                float(np.mean(np.array([r[1] for r in rows])[truth == label] == label)), 4
            ),
            "profile": round(
                float(np.mean(np.array([r[2] for r in rows])[truth == label] == label)), 4
            ),
        }
        for label in sorted(set(truth))
    }
    return out


def _cmd_check(args) -> int:
    profile = SiteProfile.open(args.profile)
    cascade = _cascade(args)
    head = profile.head(cascade, leave_one_out=True)
    cascade.use_profile(head)
    report: dict = {
        "profile": str(args.profile),
        "photos": len(profile.photos),
        "classes": profile.counts(),
        "leave_one_out": None
        if head.empty
        else {
            "profile": round(head.loo_accuracy or 0.0, 4),
            "base": round(head.loo_base_accuracy or 0.0, 4),
            "temperature": head.temperature,
        },
    }
    if args.against is not None:
        report["against"] = {"folder": str(args.against), **_against(args.against, cascade, head)}
    if args.json:
        print(json.dumps(report))
        return 0
    loo = report["leave_one_out"]
    n_classes = len(profile.classes)
    print(
        f"{args.profile}: {report['photos']} photo{'s' * (report['photos'] != 1)} "
        f"in {n_classes} class{'es' * (n_classes != 1)}"
    )
    if loo:
        print(
            f"  leave-one-out on the taught photos: {loo['profile']:.1%} with the profile, "
            f"{loo['base']:.1%} base cascade alone (temperature {loo['temperature']})"
        )
    if args.against is not None:
        a = report["against"]
        print(
            f"  {args.against}: {a['profile']['accuracy']:.1%} with the profile, "
            f"{a['base']['accuracy']:.1%} without ({a['photos']} photos)"
        )
        for label, row in a["per_class"].items():
            print(f"    {label:<14}{row['photos']:>5}  {row['base']:.1%} -> {row['profile']:.1%}")
    return 0
