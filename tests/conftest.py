"""Shared fixtures: where the shared photos and the shipped models live."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# every command writes a log file (waste_vision/logs.py): the tests keep theirs out of ~
os.environ.setdefault(
    "WASTE_VISION_LOG_DIR", str(Path(tempfile.gettempdir()) / "waste-vision-test-logs")
)
# the events database and the window's default site profile: never the user's own
os.environ["WASTE_VISION_DATA_DIR"] = tempfile.mkdtemp(prefix="waste-vision-test-data-")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The shared photos; tests that need them skip where they are absent, except in CI
    (``WASTE_VISION_REQUIRE_SHARED=1``, set by ``.ci/run``), where their absence fails."""
    path = SHARED / "datasets"
    if not path.is_dir():
        message = f"../shared/datasets is missing beside the repo ({path})"
        if os.environ.get("WASTE_VISION_REQUIRE_SHARED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return ROOT / "models"


def litert_models_copy(dst: Path, change: Callable[[dict], None] | None = None) -> Path:
    """The shipped models copied to ``dst`` without their reports and Keras files (the
    manifest then names none: LiteRT only, cheap to copy), ``change`` applied to the manifest
    first where given (a test's own damage)."""
    shutil.copytree(ROOT / "models", dst, ignore=shutil.ignore_patterns("reports", "*.keras"))
    raw = json.loads((dst / "cascade.json").read_text())
    for stage in raw["stages"]:
        stage.pop("keras", None)
    if change is not None:
        change(raw)
    (dst / "cascade.json").write_text(json.dumps(raw))
    return dst


def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> bool:
    """Poll ``predicate`` until it is true (returns True) or ``timeout`` seconds pass (fails
    the test naming ``what``): for waiting on something another thread or process does,
    instead of a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.01)
    return True
