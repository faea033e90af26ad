"""LiteRT's load-time notice is kept out of every command's stderr, and nothing else is."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT
from waste_vision.model import litert_backend

SAMPLES = ROOT / "assets" / "samples"


def test_a_command_prints_no_xnnpack_notice():
    done = subprocess.run(
        [sys.executable, "-m", "waste_vision", "classify", str(SAMPLES)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "XNNPACK" not in done.stderr
    assert len(done.stdout.splitlines()) > 2  # the header and a line per sample


def test_other_native_stderr_written_during_a_load_is_written_back(capfd, monkeypatch):
    monkeypatch.setattr(litert_backend, "_notice_seen", False)
    with litert_backend._without_xnnpack_notice():
        os.write(2, litert_backend.XNNPACK_NOTICE + b"\nERROR: a real problem\n")
    err = capfd.readouterr().err
    assert "ERROR: a real problem" in err
    assert "XNNPACK" not in err
    assert litert_backend._notice_seen  # later loads are left alone
    with litert_backend._without_xnnpack_notice():
        os.write(2, litert_backend.XNNPACK_NOTICE + b"\n")
    assert "XNNPACK" in capfd.readouterr().err


def test_a_model_still_loads_without_a_writable_temporary_folder(monkeypatch, tmp_path):
    def no_temp_file(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(litert_backend, "_notice_seen", False)
    monkeypatch.setattr(litert_backend.tempfile, "TemporaryFile", no_temp_file)
    model = litert_backend.LiteRTModel(next((ROOT / "models").glob("*.tflite")), threads=1)
    assert model.output_sizes and all(n > 0 for n in model.output_sizes)
