"""Where the program writes its log, and how loud the terminal is.

Every command and the window write a rotating log file in the user's log folder (the
``platformdirs`` convention, e.g. ``~/.local/state/waste-vision/log`` on Linux; the environment
variable ``WASTE_VISION_LOG_DIR`` overrides it). An unexpected error is written there with its
traceback, while the terminal gets one line that names the file.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

from waste_vision.redact import redact_url

LOGGER_NAME = "waste_vision"
LOG_FILE_NAME = "waste-vision.log"
MAX_BYTES = 2 * 2**20
BACKUPS = 3


def log_dir() -> Path:
    override = os.environ.get("WASTE_VISION_LOG_DIR")
    if override:
        return Path(override)
    from platformdirs import user_log_dir

    return Path(user_log_dir("waste-vision", appauthor=False))


def log_file() -> Path:
    return log_dir() / LOG_FILE_NAME


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_url(super().format(record))


def setup_logging(verbosity: int = 0) -> Path | None:
    """Log to the rotating file (DEBUG) and to stderr (WARNING; -v INFO, -vv DEBUG; -q ERROR).

    Returns the log file, or None when its folder cannot be written (the terminal still works).
    Safe to call more than once: handlers are replaced, not added.
    """
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    console = logging.StreamHandler()
    console.setLevel(
        {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(
            max(-1, min(verbosity, 2)), logging.DEBUG
        )
    )
    console.setFormatter(_RedactingFormatter("waste-vision: %(message)s"))
    logger.addHandler(console)
    path = log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
    except OSError:
        return None
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(
        _RedactingFormatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    )
    logger.addHandler(handler)
    return path


def get_logger(name: str) -> logging.Logger:
    """A child of the package logger: ``get_logger(__name__)``."""
    return logging.getLogger(name if name.startswith(LOGGER_NAME) else f"{LOGGER_NAME}.{name}")
