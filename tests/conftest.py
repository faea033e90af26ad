"""Shared fixtures: where the shared photos and the shipped models live."""

from __future__ import annotations

import os
import tempfile
import time
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
