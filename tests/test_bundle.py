"""The frozen bundle, end to end: build it from build.spec, then run its commands from /tmp.

Slow (a PyInstaller build: about 20 s with PyInstaller's cache, a minute or two without), and
part of the default run (CI included): the dev extra brings PyInstaller. To leave it out of a
quick local run: ``WASTE_VISION_SKIP_BUNDLE=1 python -m pytest``; alone: ``python -m pytest -m slow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "assets" / "samples"
# tools/test_latest.sh: the newest allowed packages, not constraints.txt
UNPINNED = os.environ.get("WASTE_VISION_UNPINNED") == "1"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("WASTE_VISION_SKIP_BUNDLE") == "1",
        reason="WASTE_VISION_SKIP_BUNDLE=1 asked to leave the bundle test out",
    ),
]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pyinstaller")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            str(ROOT / "build.spec"),
            "--noconfirm",
            "--distpath",
            str(out / "dist"),
            "--workpath",
            str(out / "work"),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=1800,
    )
    exe = out / "dist" / "waste-vision" / "waste-vision"
    assert exe.is_file()
    return exe


def _run(exe: Path, *args, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(cwd / "config"))
    env.pop("WASTE_VISION_MODELS", None)
    env.pop("WASTE_VISION_ASSETS", None)
    return subprocess.run(
        [str(exe), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_contents(bundle):
    root = bundle.parent
    assert not [p for p in root.rglob("*") if "tensorflow" in p.name.lower()]
    assert not list(root.rglob("*.keras"))
    internal = root / "_internal"
    assert (internal / "models" / "cascade.json").is_file()
    names = {p.name for p in (internal / "models").glob("*.tflite")}
    assert names == {
        "stage1_organic_recyclable.tflite",
        "stage2_material.tflite",
        "cascade_fused.tflite",
        "cascade_fused_int8.tflite",
    }
    assert (internal / "assets" / "demo.mp4").is_file()
    assert not list(root.rglob("*.qm")) and not list(root.rglob("libQt6Qml*"))
    # one FFmpeg (PyAV's, with H.264), used by cv2 too; no dangling link; no CompiledModel lib
    assert list((internal / "av.libs").glob("libavcodec-*.so*"))
    assert not [p for p in root.rglob("*") if p.is_symlink() and not p.exists()]
    assert not (internal / "ai_edge_litert" / "libLiteRt.so").exists()
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    size_checks = {
        "one FFmpeg (OpenCV's left out)": not list(
            (internal / "opencv_python_headless.libs").glob("libavcodec-*")
        ),
        f"bundle is {size / 2**20:.0f} MB (limit 400)": size <= 400 * 2**20,
    }
    failed = [what for what, ok in size_checks.items() if not ok]
    if failed and UNPINNED:
        # newer OpenCV/PyAV than the tested set (tools/test_latest.sh): the size is reported,
        # the bundle still has to work (the tests below)
        warnings.warn("bundle size with unpinned packages: " + "; ".join(failed), stacklevel=2)
    else:
        assert not failed, failed


def test_self_test(bundle, tmp_path):
    r = _run(bundle, "--self-test", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "frozen bundle" in r.stdout and "all passed" in r.stdout


@pytest.mark.parametrize("flags", [[], ["--int8"]], ids=["float16", "int8"])
def test_classify(bundle, tmp_path, flags):
    photos = sorted(SAMPLES.glob("*.jpg"))[:4]
    r = _run(bundle, "classify", "--format", "jsonl", *flags, *photos, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert [Path(x["path"]).name for x in records] == [p.name for p in photos]
    # the bundle runs the same model as this Python install: the same labels, the same scores
    from waste_vision.images import read_rgb
    from waste_vision.model.cascade import Cascade

    cascade = Cascade(ROOT / "models", backend="litert", int8=bool(flags))
    for rec, photo in zip(records, photos, strict=False):
        expected = cascade.classify(read_rgb(photo))
        assert rec["label"] == expected.label, rec
        assert rec["stage1"]["score"] == pytest.approx(expected.stage1.score, abs=1e-4), rec


def test_teach_and_classify_with_the_profile_without_tensorflow(bundle, tmp_path):
    """Teaching runs in the kiosk bundle (LiteRT only): the same profile, the same labels."""
    photos = sorted(SAMPLES.glob("metal_*.jpg"))
    r = _run(bundle, "teach", "add", "site", "metal", *photos, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(photos)} photo(s) added to metal" in r.stdout
    r = _run(bundle, "teach", "list", "site", "--json", cwd=tmp_path)
    assert json.loads(r.stdout)["classes"][0]["class"] == "metal"
    r = _run(bundle, "classify", "--format", "jsonl", "--profile", "site", *photos, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["label"] for line in r.stdout.splitlines()] == ["metal"] * len(photos)


def test_keras_backend_says_it_is_unavailable(bundle, tmp_path):
    r = _run(
        bundle,
        "classify",
        "--backend",
        "keras",
        SAMPLES / "glass_trashnet_glass102.jpg",
        cwd=tmp_path,
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "--backend litert" in r.stderr


def test_annotate_demo_clip(bundle, tmp_path):
    import cv2

    clip = ROOT / "tests" / "fixtures" / "slideshow.mp4"
    r = _run(
        bundle,
        "annotate",
        clip,
        "-o",
        tmp_path / "out.mp4",
        "--jsonl",
        tmp_path / "out.jsonl",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    cap = cv2.VideoCapture(str(clip))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == frames
    out = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert int(out.get(cv2.CAP_PROP_FRAME_COUNT)) == frames
    out.release()
    import av  # the bundle's recording is H.264 (PyAV inside the bundle)

    with av.open(str(tmp_path / "out.mp4")) as video:
        assert video.streams.video[0].codec_context.name == "h264"


def test_app_kiosk_offscreen(bundle, tmp_path):
    stats = tmp_path / "stats.json"
    r = _run(
        bundle,
        "app",
        "--kiosk",
        "--exit-after",
        "2",
        "--stats-json",
        stats,
        cwd=tmp_path,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(stats.read_text())["frames_classified"] > 0


def test_train_says_it_is_not_in_the_bundle(bundle, tmp_path):
    r = _run(
        bundle,
        "train",
        "--stage",
        "material",
        "--data",
        tmp_path,
        "--out",
        tmp_path / "m",
        cwd=tmp_path,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "training" in r.stderr
    # data split is training-time code too (training/datasplit.py), left out alike
    r = _run(bundle, "data", "split", tmp_path, tmp_path / "s", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "training" in r.stderr
