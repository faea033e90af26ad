"""Shared fixtures: where the shared photos and the shipped models live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    path = SHARED / "datasets"
    assert path.is_dir(), f"../shared/datasets is missing beside the repo ({path})"
    return path


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return ROOT / "models"
