"""Fine-tune the shared trunk on both stages at once, starting from the two trained stages.

``train`` keeps the trunk frozen so that its output can be cached; that is what fits training
on 2 CPU cores, and what lets both stages share one trunk pass per frame. Here the trunk's
later blocks learn too: every batch holds photos of both stages, each seen through a fresh
augmentation, the stage-1 tail scores the first part and the material tail the rest, and
one loss moves the shared trunk. The fused model keeps its shape (one trunk, two tails), so
a frame still costs one trunk pass. By default everything starts from ImageNet with new
classifiers (tails that already fit the training photos leave too little to learn from);
``--start shipped`` continues from a models folder instead, its epoch 0 being that folder.
The epoch with the lowest mean validation loss is the one written.

Top to bottom: data, model, train (with validation after every epoch), calibrate, export.
"""

from __future__ import annotations

import csv
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from tqdm import tqdm

from waste_vision.images import read_rgb, resize_for_model
from waste_vision.training.backbone import trunk_model
from waste_vision.training.calibration import fit_temperature
from waste_vision.training.data import STAGE_LABELS, stage_split
from waste_vision.training.export import export_tflite
from waste_vision.training.features import augment, on_board
from waste_vision.training.train import (
    STAGE_FILES,
    assemble,
    build_tail,
    class_weights,
    update_manifest,
)

STAGES = ("organic-recyclable", "material")


def load_stage(models: Path, stage: str) -> tuple[keras.Model, keras.Model, dict]:
    """A shipped stage as a float32 (trunk, tail) pair, the temperature taken back out."""
    summary = json.loads((models / f"{STAGE_FILES[stage]}.json").read_text())
    shipped = keras.models.load_model(models / f"{STAGE_FILES[stage]}.keras", compile=False)
    size, split = summary["input_size"][0], summary["split_block"]
    trunk = trunk_model(summary["backbone"], split, size, pretrained=False)
    tail = build_tail(stage, len(summary["labels"]), summary["backbone"], split, pretrained=False)
    trunk.set_weights([w.astype(np.float32) for w in shipped.get_layer("trunk").get_weights()])
    weights = [w.astype(np.float32) for w in shipped.layers[2].get_weights()]
    weights[-2:] = [weights[-2] * summary["temperature"], weights[-1] * summary["temperature"]]
    tail.set_weights(weights)
    return trunk, tail, summary


def freeze_below(trunk: keras.Model, from_block: int) -> None:
    """Blocks before ``from_block`` (and the stem) stay fixed; BatchNorm stays fixed everywhere
    (batches of 16 per stage are too small for its statistics)."""
    for layer in trunk.layers:
        name = layer.name
        block = None
        if "block" in name:
            digits = "".join(c if c.isdigit() else " " for c in name.split("block", 1)[1]).split()
            block = int(digits[0]) if digits else None
        learns = block is not None and block >= from_block
        layer.trainable = learns and not isinstance(layer, layers.BatchNormalization)


def set_tail_learning(tail: keras.Model) -> None:
    for layer in tail.layers:
        layer.trainable = not isinstance(layer, layers.BatchNormalization)


class Batches:
    """Endless stream of (stage-1 images, labels, material images, labels), freshly augmented.

    Each stage walks its own shuffled order; the next batch is decoded on a worker thread
    while the current one trains (OpenCV releases the GIL).
    """

    def __init__(self, files: dict, per_stage: dict[str, int], size: int, seed: int, board: float):
        self.files, self.per_stage, self.size, self.board = files, per_stage, size, board
        self.rng = np.random.default_rng(seed)
        self.order = {s: self.rng.permutation(len(f.paths)) for s, f in files.items()}
        self.pos = dict.fromkeys(files, 0)
        self.pool = ThreadPoolExecutor(1)
        self.next = self.pool.submit(self._make)

    def _take(self, stage: str) -> np.ndarray:
        n, k = len(self.order[stage]), self.per_stage[stage]
        if self.pos[stage] + k > n:
            self.order[stage] = self.rng.permutation(n)
            self.pos[stage] = 0
        idx = self.order[stage][self.pos[stage] : self.pos[stage] + k]
        self.pos[stage] += k
        return idx

    def _make(self):
        out = []
        for stage in STAGES:
            files = self.files[stage]
            idx = self._take(stage)
            board = self.board if stage == "organic-recyclable" else 0.0
            x = np.stack(
                [
                    augment(read_rgb(files.paths[i]), self.rng, (self.size, self.size), board)
                    for i in idx
                ]
            ).astype(np.float32)
            out += [x, np.asarray([files.labels[i] for i in idx])]
        return out

    def __next__(self):
        batch = self.next.result()
        self.next = self.pool.submit(self._make)
        return batch


def plain_images(paths: list[Path], size: int, desc: str, rng=None) -> np.ndarray:
    """The validation photos at model size, uint8 in memory (laid on a board when rng given)."""
    out = np.zeros((len(paths), size, size, 3), np.uint8)
    for i, p in enumerate(tqdm(paths, desc=desc, unit="img")):
        rgb = read_rgb(p)
        if rng is not None:
            rgb = on_board(rgb, rng)
        out[i] = np.clip(resize_for_model(rgb, (size, size)), 0, 255).astype(np.uint8)
    return out


def stage_loss(stage: str, n_classes: int, weights: dict[int, float]):
    """Class-weighted cross-entropy on logits for one stage."""
    w = tf.constant([weights.get(i, 1.0) for i in range(n_classes)], tf.float32)

    def loss(y, logits):
        y = tf.cast(y, tf.int32)
        if n_classes == 2:
            per = tf.nn.sigmoid_cross_entropy_with_logits(tf.cast(y, tf.float32)[:, None], logits)[
                :, 0
            ]
        else:
            per = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        sw = tf.gather(w, y)
        return tf.reduce_sum(per * sw) / tf.reduce_sum(sw)

    return loss


def _scores(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of raw logits."""
    if logits.shape[1] == 1:
        z = logits[:, 0]
        return float(np.mean((z >= 0) == y)), float(np.mean(np.logaddexp(0, z) - y * z))
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return float(np.mean(z.argmax(1) == y)), float(-np.mean(logp[np.arange(len(y)), y]))


def train_joint(args) -> None:
    keras.utils.set_random_seed(args.seed)
    start = time.monotonic()
    models, out = Path(args.models), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)

    # --- data: both stages' train and validation photos, as `train` reads them
    data = {
        "organic-recyclable": (args.stage1_data, args.stage1_extra),
        "material": (args.material_data, args.material_extra),
    }
    train = {s: stage_split(d, s, "TRAIN", extra) for s, (d, extra) in data.items()}
    val = {s: stage_split(d, s, "VALIDATION", extra) for s, (d, extra) in data.items()}
    for s in STAGES:
        print(f"{s}: {len(train[s].paths)} train, {len(val[s].paths)} validation photos")

    # --- model: the stages' shapes from --models (their weights too with --start shipped),
    # one trunk shared and partly unfrozen
    trunk, tail1, summary1 = load_stage(models, "organic-recyclable")
    trunk2, tail2, summary2 = load_stage(models, "material")
    if (
        summary1["split_block"] != summary2["split_block"]
        or summary1["backbone"] != summary2["backbone"]
    ):
        raise SystemExit("joint fine-tuning needs both stages on the same trunk")
    size, backbone, split = summary1["input_size"][0], summary1["backbone"], summary1["split_block"]
    del trunk2
    if args.start == "imagenet":
        # Same shapes, ImageNet weights: the tails' last block and head start from ImageNet
        # too and the classifiers from scratch, trained alone for --head-steps first.
        trunk = trunk_model(backbone, split, size)
        tail1, tail2 = (build_tail(s, len(STAGE_LABELS[s]), backbone, split) for s in STAGES)
    freeze_below(trunk, args.from_block)
    tails = {"organic-recyclable": tail1, "material": tail2}
    for tail in tails.values():
        set_tail_learning(tail)
    variables = trunk.trainable_variables + tail1.trainable_variables + tail2.trainable_variables
    print(
        f"trunk blocks {args.from_block}..{split - 1} and both tails learn: "
        f"{sum(int(np.prod(v.shape)) for v in variables):,} weights"
    )
    losses = {
        s: stage_loss(
            s,
            len(STAGE_LABELS[s]),
            class_weights(np.asarray(train[s].labels), len(STAGE_LABELS[s])),
        )
        for s in STAGES
    }
    steps_per_epoch = args.steps_per_epoch or len(train["material"].paths) // args.per_stage
    total_steps = steps_per_epoch * args.epochs
    warmup = min(args.warmup_steps, total_steps // 2)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, total_steps - warmup, alpha=0.05, warmup_target=args.lr, warmup_steps=warmup
    )
    optimizer = keras.optimizers.Adam(schedule)
    n1 = args.stage1_batch or args.per_stage

    @tf.function
    def train_step(x1, y1, x2, y2):
        with tf.GradientTape() as tape:
            features = trunk(tf.concat([x1, x2], 0), training=True)
            l1 = losses["organic-recyclable"](y1, tail1(features[:n1], training=True))
            l2 = losses["material"](y2, tail2(features[n1:], training=True))
            loss = l1 + l2
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=False))
        return l1, l2

    @tf.function
    def logits_of(x, which: int):
        features = trunk(x, training=False)
        return (tail1 if which == 0 else tail2)(features, training=False)

    def all_logits(images: np.ndarray, which: int) -> np.ndarray:
        return np.concatenate(
            [
                logits_of(tf.constant(images[i : i + 64], tf.float32), which).numpy()
                for i in range(0, len(images), 64)
            ]
        )

    x_val = {s: plain_images(val[s].paths, size, f"{s} validation") for s in STAGES}
    y_val = {s: np.asarray(val[s].labels) for s in STAGES}

    def validate() -> dict:
        row = {}
        for which, s in enumerate(STAGES):
            logits = all_logits(x_val[s], which)
            row[f"{s}_acc"], row[f"{s}_loss"] = _scores(logits, y_val[s])
        row["score"] = (row["organic-recyclable_loss"] + row["material_loss"]) / 2
        return row

    # --- train: new classifiers alone first (ImageNet start), then trunk and tails; score
    # validation before and after every epoch and keep the best epoch's weights
    dense = [
        v
        for t in (tail1, tail2)
        for layer in t.layers
        if isinstance(layer, layers.Dense)
        for v in layer.trainable_variables
    ]
    head_optimizer = keras.optimizers.Adam(1e-3)

    @tf.function
    def head_step(x1, y1, x2, y2):
        features = trunk(tf.concat([x1, x2], 0), training=False)
        with tf.GradientTape() as tape:
            loss = losses["organic-recyclable"](y1, tail1(features[:n1], training=True)) + losses[
                "material"
            ](y2, tail2(features[n1:], training=True))
        head_optimizer.apply_gradients(zip(tape.gradient(loss, dense), dense, strict=False))
        return loss

    batches = Batches(
        train,
        {"organic-recyclable": n1, "material": args.per_stage},
        size,
        args.seed,
        args.on_board,
    )
    if args.start == "imagenet":
        bar = tqdm(range(args.head_steps), desc="classifiers alone", unit="batch")
        for _ in bar:
            bar.set_postfix(loss=f"{float(head_step(*next(batches))):.3f}")
    history = [{"epoch": 0, **validate()}]
    print(f"epoch 0 ({args.start}):", history[0], flush=True)
    best = float("inf")
    best_path = run_dir / "best.weights.npz"
    for epoch in range(1, args.epochs + 1):
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{args.epochs}", unit="batch")
        run1 = run2 = 0.0
        for step in bar:
            x1, y1, x2, y2 = next(batches)
            l1, l2 = train_step(x1, y1, x2, y2)
            run1, run2 = 0.98 * run1 + 0.02 * float(l1), 0.98 * run2 + 0.02 * float(l2)
            bar.set_postfix(
                stage1=f"{run1 / (1 - 0.98 ** (step + 1)):.3f}",
                material=f"{run2 / (1 - 0.98 ** (step + 1)):.3f}",
            )
        row = {"epoch": epoch, **validate()}
        history.append(row)
        print(f"epoch {epoch}:", row, flush=True)
        with open(run_dir / "joint_log.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            writer.writeheader()
            writer.writerows(history)
        if row["score"] < best:
            best = row["score"]
            np.savez(best_path, *(v.numpy() for v in variables))
        minutes = (time.monotonic() - start) / 60
        if minutes * (epoch + 1) / epoch > args.max_minutes:
            print(f"stopping after epoch {epoch}: another would pass {args.max_minutes} min")
            break
    best_epoch = min(history[1:], key=lambda r: r["score"])["epoch"]
    if history[best_epoch]["score"] >= history[0]["score"]:
        print(
            f"warning: the best epoch ({best_epoch}) does not beat the models it started "
            f"from on validation; it is written to {out} all the same, to compare"
        )
    saved = np.load(best_path)
    for v, key in zip(variables, saved.files, strict=False):
        v.assign(saved[key])

    # --- calibrate each stage on its validation photos and export both stages and the fusion
    for which, stage in enumerate(STAGES):
        tail = tails[stage]
        logits = all_logits(x_val[stage], which)
        temperature = fit_temperature(logits, y_val[stage])
        summary = dict(summary1 if which == 0 else summary2)
        earlier = summary.pop("joint", None)  # this run continued an earlier joint run
        for key in ("views", "youden_threshold"):  # cached views and Youden: train's, not ours
            summary.pop(key, None)
        summary.update(
            train_images=len(train[stage].paths),
            on_board=args.on_board if which == 0 else 0.0,
            extra=[str(p) for p in data[stage][1]],
        )
        summary.update(
            temperature=temperature,
            joint={
                **({"continues": earlier} if earlier and args.start == "shipped" else {}),
                "start": args.start,
                "head_steps": args.head_steps,
                "from_block": args.from_block,
                "epochs_run": len(history) - 1,
                "best_epoch": best_epoch,
                "lr": args.lr,
                "per_stage": args.per_stage,
                "stage1_batch": n1,
                "models": str(models),
                "history": history,
            },
        )
        sources = np.asarray(val[stage].sources)
        if logits.shape[1] == 1:
            predicted = (logits[:, 0] / temperature >= 0).astype(int)
            own = slice(0, val[stage].primary)
            summary["val_accuracy"] = float(np.mean(predicted[own] == y_val[stage][own]))
            board = plain_images(
                val[stage].paths[own],
                size,
                "validation on a board",
                np.random.default_rng(args.seed),
            )
            zb = all_logits(board, 0)[:, 0]
            said = zb >= 0
            summary["val_on_board_accuracy"] = float(np.mean(said == y_val[stage][own]))
            summary["val_on_board_organic"] = float(np.mean(~said[y_val[stage][own] == 0]))
        else:
            predicted = logits.argmax(1)
            summary["val_accuracy"] = float(np.mean(predicted == y_val[stage]))
        summary["val_accuracy_per_source"] = {
            s: float(np.mean(predicted[sources == s] == y_val[stage][sources == s]))
            for s in dict.fromkeys(val[stage].sources)
        }
        print(
            f"{stage}: validation {summary['val_accuracy']:.4f}, T={temperature:.3f}, "
            f"per source {summary['val_accuracy_per_source']}"
        )
        base = out / STAGE_FILES[stage]
        parts = (stage, trunk, tail, backbone, split, temperature)
        assemble(*parts, "float16").save(f"{base}.keras")
        export_tflite(assemble(*parts), Path(f"{base}.tflite"))
        (out / f"{STAGE_FILES[stage]}.json").write_text(json.dumps(summary, indent=2))
    manifest = update_manifest(out)
    print(f"wrote both stages to {out}" + (f" and {manifest}" if manifest else ""))


def main(argv=None) -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--models",
        type=Path,
        default=Path("models"),
        help="trained stages: their shapes, and with --start shipped their weights",
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stage1-data", type=Path, default=Path("work/kaggle-or-split"))
    p.add_argument(
        "--stage1-extra",
        type=Path,
        action="append",
        default=[],
        help="more stage-1 sources, split alike (as train's --extra)",
    )
    p.add_argument("--material-data", type=Path, default=Path("work/trashnet-split"))
    p.add_argument("--material-extra", type=Path, action="append", default=[])
    p.add_argument(
        "--start",
        choices=("imagenet", "shipped"),
        default="imagenet",
        help="imagenet: tails from ImageNet, new classifiers; shipped: both stages "
        "exactly as in --models (their tails have already fit the train photos)",
    )
    p.add_argument(
        "--head-steps",
        type=int,
        default=150,
        help="batches that train the new classifiers alone first (imagenet start)",
    )
    p.add_argument(
        "--from-block",
        type=int,
        default=4,
        help="trunk blocks from this one on learn (0: the whole trunk)",
    )
    p.add_argument("--per-stage", type=int, default=16, help="photos per stage in a batch")
    p.add_argument(
        "--stage1-batch",
        type=int,
        default=0,
        help="stage-1 photos in a batch, when not --per-stage (it has 4x the photos)",
    )
    p.add_argument(
        "--epochs", type=int, default=8, help="an epoch is one pass over the material photos"
    )
    p.add_argument(
        "--steps-per-epoch",
        type=int,
        default=0,
        help="batches per epoch (0: one pass over the material photos)",
    )
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (cosine decay)")
    p.add_argument(
        "--warmup-steps",
        type=int,
        default=100,
        help="batches over which the learning rate rises from 0 (Adam's first "
        "steps would otherwise jolt the pretrained trunk)",
    )
    p.add_argument("--on-board", type=float, default=0.3)
    p.add_argument(
        "--max-minutes",
        type=float,
        default=1e9,
        help="stop after the epoch that would otherwise run past this",
    )
    p.add_argument("--run-dir", type=Path, default=Path("work/runs/joint"))
    p.add_argument("--seed", type=int, default=1337)
    train_joint(p.parse_args(argv))


if __name__ == "__main__":
    main()
