"""Tests for ``waste-vision data split``: stratified, seeded, deduplicated, robust to junk."""

from __future__ import annotations

import hashlib
import itertools
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from waste_vision.errors import UserError
from waste_vision.training.datasplit import SPLITS, SplitReport, split_dataset

SHARED = Path(__file__).resolve().parents[1].parent / "shared/datasets/kaggle-or-subset"
_content = itertools.count()


def make_image(path: Path, suffix: str = ".jpg") -> Path:
    """Write a small random image with content no other call produces."""
    path = path.with_suffix(suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(next(_content))
    assert cv2.imwrite(str(path), rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    return path


def make_classes(root: Path, sizes: dict[str, int]) -> None:
    for cls, n in sizes.items():
        for i in range(n):
            make_image(root / cls / f"img_{i:03d}")


def listing(dst: Path) -> dict[str, set[str]]:
    """Relative file paths per split, to compare two runs."""
    return {
        s: {str(p.relative_to(dst / s)) for p in (dst / s).rglob("*") if p.is_file()}
        for s in SPLITS
    }


def digests(folder: Path) -> set[str]:
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def test_stratified_counts_follow_rounding(tmp_path):
    sizes = {"O": 20, "R": 13, "glass": 7, "empty": 0}
    make_classes(tmp_path / "src", sizes)
    (tmp_path / "src" / "empty").mkdir()
    report = split_dataset(tmp_path / "src", tmp_path / "dst", val=0.15, test=0.2, seed=1)
    assert isinstance(report, SplitReport)
    for cls, n in sizes.items():
        n_test, n_val = round(n * 0.2), round(n * 0.15)
        expected = {"TEST": n_test, "VALIDATION": n_val, "TRAIN": n - n_test - n_val}
        for split in SPLITS:
            assert report.counts[split][cls] == expected[split]
            folder = tmp_path / "dst" / split / cls
            assert folder.is_dir()  # every class in every split, even when empty
            assert len(list(folder.iterdir())) == expected[split]
    assert report.skipped == [] and report.duplicates == []
    header, *rows, total, skipped = report.summary().splitlines()
    assert header.split() == ["class", *SPLITS]
    expected_rows = {}
    for cls, n in sorted(sizes.items()):
        n_test, n_val = round(n * 0.2), round(n * 0.15)
        by_split = {"TEST": n_test, "VALIDATION": n_val, "TRAIN": n - n_test - n_val}
        expected_rows[cls] = [str(by_split[s]) for s in SPLITS]
    assert {row.split()[0]: row.split()[1:] for row in rows} == expected_rows
    assert total.split() == ["total", *(str(sum(report.counts[s].values())) for s in SPLITS)]
    assert skipped == "skipped: 0 unreadable, 0 duplicates, 0 near-duplicates of a kept split"


def test_same_seed_same_split_other_seed_differs(tmp_path):
    make_classes(tmp_path / "src", {"O": 30, "R": 30})
    split_dataset(tmp_path / "src", tmp_path / "a", seed=7)
    split_dataset(tmp_path / "src", tmp_path / "b", seed=7)
    split_dataset(tmp_path / "src", tmp_path / "c", seed=8)
    assert listing(tmp_path / "a") == listing(tmp_path / "b")
    assert listing(tmp_path / "a") != listing(tmp_path / "c")


def test_hidden_files_and_checkpoints_skipped(tmp_path):
    src = tmp_path / "src"
    make_classes(src, {"O": 3, "R": 3})
    make_image(src / "O" / ".hidden")
    make_image(src / "O" / ".ipynb_checkpoints" / "img_000-checkpoint")
    make_image(src / "R" / ".cache" / "x")
    make_image(src / ".trash" / "y")
    (src / "R" / "notes.txt").write_text("not an image")
    nested = make_image(src / "R" / "batch2" / "deep")  # nested below a class: still counts
    report = split_dataset(src, tmp_path / "dst", val=0, test=0)
    assert report.counts["TRAIN"] == {"O": 3, "R": 4}
    names = {p.name for p in (tmp_path / "dst").rglob("*")}
    assert nested.name in names
    assert not any(n.startswith(".") or "checkpoint" in n or n.endswith(".txt") for n in names)


def test_duplicates_never_in_two_splits(tmp_path):
    src = tmp_path / "src"
    make_classes(src, {"O": 10, "R": 10})
    for i in range(5):  # byte-identical copies, some across classes
        shutil.copy(src / "O" / f"img_{i:03d}.jpg", src / "O" / f"copy_{i}.jpg")
        shutil.copy(src / "O" / f"img_{i:03d}.jpg", src / "R" / f"copy_{i}.jpg")
    report = split_dataset(src, tmp_path / "dst", val=0.3, test=0.3, seed=3)
    assert len(report.duplicates) == 10
    # the first copy in path order is kept: O/copy_i, over O/img_i and R/copy_i
    assert sorted((p.relative_to(src).as_posix(), why) for p, why in report.skipped) == sorted(
        (f"{folder}/{name}", f"duplicate of {src / 'O' / f'copy_{i}.jpg'}")
        for i in range(5)
        for folder, name in (("O", f"img_{i:03d}.jpg"), ("R", f"copy_{i}.jpg"))
    )
    seen = [digests(tmp_path / "dst" / s) for s in SPLITS]
    assert sum(len(d) for d in seen) == 20  # each content exactly once overall
    assert sum(sum(c.values()) for c in report.counts.values()) == 20


def test_unreadable_files_reported_and_skipped(tmp_path):
    src = tmp_path / "src"
    make_classes(src, {"O": 4, "R": 4})
    (src / "O" / "empty.jpg").write_bytes(b"")
    (src / "O" / "text.jpg").write_text("this is not a jpeg")
    good = make_image(tmp_path / "tmp" / "whole")
    (src / "R" / "truncated.jpg").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    report = split_dataset(src, tmp_path / "dst", val=0.25, test=0.25)
    skipped = {p.name: reason for p, reason in report.skipped}
    unreadable = "not a readable image (corrupt or unsupported format"
    assert skipped == {  # images.read_rgb's reasons
        "empty.jpg": "file is empty",
        "text.jpg": unreadable + "; use JPEG, PNG, BMP, WebP or TIFF)",
        "truncated.jpg": unreadable + ")",
    }
    assert sum(sum(c.values()) for c in report.counts.values()) == 8
    assert len([p for p in (tmp_path / "dst").rglob("*") if p.is_file()]) == 8
    assert report.summary().splitlines()[-1] == (
        "skipped: 3 unreadable, 0 duplicates, 0 near-duplicates of a kept split"
    )
    assert report.unreadable == 3


def test_command_line_exits_1_when_files_were_unreadable(tmp_path, capsys):
    """The rest are split, each unreadable file is one line, and the exit code says some
    inputs failed (1); duplicates dropped on purpose do not count as failures."""
    from waste_vision.commands.cli import main

    src = tmp_path / "src"
    make_classes(src, {"O": 4, "R": 4})
    (src / "O" / "text.jpg").write_text("this is not a jpeg")
    assert main(["data", "split", str(src), str(tmp_path / "dst"), "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"skipped {src / 'O' / 'text.jpg'}: ")
    assert sum(len(v) for v in listing(tmp_path / "dst").values()) == 8


def test_command_line_exits_0_for_an_image_outside_the_class_folders(tmp_path, capsys):
    """A preview photo at the top of the source is listed and left out, not a failure."""
    from waste_vision.commands.cli import main

    src = tmp_path / "src"
    make_classes(src, {"O": 4, "R": 4})
    make_image(src / "preview")
    assert main(["data", "split", str(src), str(tmp_path / "dst"), "-q"]) == 0
    out, err = capsys.readouterr()
    assert err.strip() == f"skipped {src / 'preview.jpg'}: not inside a class folder"
    assert out.strip().splitlines()[-1] == (
        "skipped: 0 unreadable, 0 duplicates, 0 near-duplicates of a kept split, "
        "1 outside a class folder"
    )


def test_existing_test_split_kept_and_wins_duplicates(tmp_path):
    src = tmp_path / "src"
    make_classes(src / "TRAIN", {"O": 20, "R": 20})
    make_classes(src / "TEST", {"O": 5, "R": 3})
    shutil.copy(
        src / "TEST" / "O" / "img_000.jpg", src / "TEST" / "O" / "same.jpg"
    )  # kept: same split
    shutil.copy(
        src / "TEST" / "R" / "img_000.jpg", src / "TRAIN" / "R" / "leak.jpg"
    )  # dropped: TEST wins
    report = split_dataset(src, tmp_path / "dst", val=0.25, test=0.5, seed=0)
    assert report.counts["TEST"] == {"O": 6, "R": 3}  # as is: --test does not apply
    assert report.counts["VALIDATION"] == {"O": 5, "R": 5}  # 25% of TRAIN per class
    assert report.counts["TRAIN"] == {"O": 15, "R": 15}
    assert [(d.name, k.name) for d, k in report.duplicates] == [("leak.jpg", "img_000.jpg")]
    assert {p.name for p in (tmp_path / "dst" / "TEST" / "O").iterdir()} == {
        p.name for p in (src / "TEST" / "O").iterdir()
    }
    test_hashes = digests(tmp_path / "dst" / "TEST")
    assert not test_hashes & (
        digests(tmp_path / "dst" / "TRAIN") | digests(tmp_path / "dst" / "VALIDATION")
    )


def test_name_clash_gets_suffix(tmp_path):
    src = tmp_path / "src"
    make_image(src / "O" / "a" / "x")
    make_image(src / "O" / "b" / "x")
    report = split_dataset(src, tmp_path / "dst", val=0, test=0)
    assert report.counts["TRAIN"]["O"] == 2
    assert sorted(p.name for p in (tmp_path / "dst" / "TRAIN" / "O").iterdir()) == [
        "x.jpg",
        "x_1.jpg",
    ]


def test_link_mode_makes_hard_links(tmp_path):
    src = tmp_path / "src"
    make_classes(src, {"O": 4, "R": 4})
    report = split_dataset(src, tmp_path / "dst", val=0.25, test=0.25, link=True)
    assert report.linked == 8
    for out in (tmp_path / "dst").rglob("*.jpg"):
        assert out.stat().st_ino == (src / out.parent.name / out.name).stat().st_ino


def test_progress_wraps_iterations(tmp_path):
    make_classes(tmp_path / "src", {"O": 3})
    totals = []

    def progress(iterable, total):
        totals.append(total)
        return iterable

    split_dataset(tmp_path / "src", tmp_path / "dst", progress=progress)
    assert totals == [3, 3]  # the photos read, then the photos written


@pytest.mark.parametrize("val,test", [(-0.1, 0.1), (0.5, 0.5), (0.2, 1.0), (0.9, 0.2)])
def test_bad_fractions(tmp_path, val, test):
    make_classes(tmp_path / "src", {"O": 2})
    with pytest.raises(UserError, match="--val"):
        split_dataset(tmp_path / "src", tmp_path / "dst", val=val, test=test)


def test_user_errors(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(UserError, match="nope"):
        split_dataset(missing, tmp_path / "dst")
    src = tmp_path / "src"
    make_classes(src, {"O": 2})
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="empty"):
        split_dataset(src, tmp_path / "full")
    with pytest.raises(UserError, match="inside"):
        split_dataset(src, src / "out")
    (tmp_path / "flat").mkdir()
    make_image(tmp_path / "flat" / "loose")
    with pytest.raises(UserError, match="class folders"):
        split_dataset(tmp_path / "flat", tmp_path / "dst")
    (tmp_path / "emptydst").mkdir()  # an existing but empty destination is fine
    # 2 photos at the default 15% + 15%: round(0.3) = 0 each, both train
    assert split_dataset(src, tmp_path / "emptydst").counts == {
        "TRAIN": {"O": 2},
        "VALIDATION": {"O": 0},
        "TEST": {"O": 0},
    }


def test_real_kaggle_subset(tmp_path, shared_datasets):
    """The shared subset has TRAIN and TEST; TEST stays whole, VALIDATION comes from TRAIN."""
    report = split_dataset(SHARED, tmp_path / "dst", val=0.15, seed=0, link=True)
    dst = tmp_path / "dst"
    assert report.counts["TEST"] == {"O": 500, "R": 500}
    assert len(list((dst / "TEST" / "O").iterdir())) == 500
    assert len(list((dst / "TEST" / "R").iterdir())) == 500
    for cls in ("O", "R"):
        n_val, n_train = report.counts["VALIDATION"][cls], report.counts["TRAIN"][cls]
        # whole near-duplicate groups at a time: never short of 15%, over by less than a group
        assert round((n_val + n_train) * 0.15) <= n_val
        assert abs(n_val / (n_val + n_train) - 0.15) < 0.01
    split_hashes = [digests(dst / s) for s in SPLITS]
    for a, b in itertools.combinations(split_hashes, 2):
        assert not a & b


def _near_twin(original: Path, twin: Path) -> Path:
    """The same picture re-encoded a little brighter: a different file, the same photo."""
    image = cv2.imread(str(original))
    twin.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(twin), cv2.add(image, 3), [cv2.IMWRITE_JPEG_QUALITY, 80])
    return twin


def test_near_duplicates_stay_in_one_split(tmp_path):
    src = tmp_path / "src"
    make_classes(src, {"a": 30})
    for i in range(10):  # ten photos each with a near twin
        _near_twin(src / "a" / f"img_{i:03d}.jpg", src / "a" / f"twin_{i:03d}.jpg")
    report = split_dataset(src, tmp_path / "dst", val=0.2, test=0.2, seed=3)
    where = {p.name: s for s in SPLITS for p in (tmp_path / "dst" / s / "a").iterdir()}
    assert len(where) == 40
    for i in range(10):
        assert where[f"img_{i:03d}.jpg"] == where[f"twin_{i:03d}.jpg"]
    assert sum(report.counts[s]["a"] for s in SPLITS) == 40


def test_near_duplicate_of_kept_test_image_leaves_train(tmp_path):
    src = tmp_path / "src"
    make_classes(src / "TRAIN", {"a": 6})
    make_classes(src / "TEST", {"a": 2})
    _near_twin(src / "TEST" / "a" / "img_000.jpg", src / "TRAIN" / "a" / "leak.jpg")
    report = split_dataset(src, tmp_path / "dst", val=0.0, test=0.0)
    assert [p.name for p, _ in report.near_duplicates] == ["leak.jpg"]
    assert not any(p.name == "leak.jpg" for p in (tmp_path / "dst").rglob("*"))
    off = split_dataset(src, tmp_path / "dst2", val=0.0, test=0.0, near_dup_bits=-1)
    assert off.counts["TRAIN"]["a"] == 7


def test_command_line_splits_and_refuses_a_missing_folder(tmp_path, capsys):
    """``waste-vision data split`` reaches the training package's splitter; a wrong folder is
    one line and exit 2."""
    from waste_vision.commands.cli import main

    make_classes(tmp_path / "src", {"O": 10, "R": 10})
    assert main(["data", "split", str(tmp_path / "src"), str(tmp_path / "dst")]) == 0
    assert sum(len(v) for v in listing(tmp_path / "dst").values()) == 20
    capsys.readouterr()  # the progress bars
    assert main(["data", "split", str(tmp_path / "nowhere"), str(tmp_path / "dst2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"waste-vision: error: source folder not found: {tmp_path / 'nowhere'}"]
