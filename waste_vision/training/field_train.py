"""Retrain the material tail for field cameras, on the shipped (jointly tuned) trunk.

Why this shape: the shipped trunk (blocks 0-14) stays exactly as it is, so stage 1, the
fused model's single trunk pass and its cost per frame are unchanged, and the trunk's
output for every training photo and several field-style views of it (``augment.field_view``:
blur, dim light, white balance, noise, JPEG, small in frame, laid on belt, cardboard, wood,
concrete) can be cached once with LiteRT. Each epoch then runs only the material tail
(last block, head, classifier), started from the shipped one: minutes per epoch on two
busy cores instead of the 83 minutes of a joint run.

It learns from the material TRAIN photos (TrashNet, garbage12), labtrash conveyor crops from
its train sessions that are not validation sessions, and, as outlier exposure, items of no
class we name (garbage12-other's train part, TrashNet ``trash`` TRAIN): for those the loss
pulls the material softmax towards uniform, so their top probability falls below the
cascade's ``min_confidence`` and they come out ``uncertain`` (no new output; the cascade's
rule is unchanged).

``--stage organic-recyclable`` retrains stage 1's tail the same way (the material tail and
the embeddings site profiles compare stay as they are): stage 1's TRAIN photos (Kaggle O/R,
with garbage12 and TrashNet as recyclable) and the labtrash train crops (recyclable) in plain
and field views, distilled towards the shipped tail on plain photos; no outlier exposure
(items of no class we name are judged by the material stage). Its validation adds one field
view of every validation photo.

After every epoch (material): clean material validation, labtrash validation crops and held-out unknown
items are scored on cached features; the epoch written is chosen by ``choose_epoch``.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from waste_vision.images import read_rgb, resize_for_model
from waste_vision.training.augment import (
    belt_crops,
    board_mask,
    field_view,
    surface_bank,
    work_size,
)
from waste_vision.training.calibration import fit_temperature
from waste_vision.training.data import LabelledFiles, stage_split
from waste_vision.training.export import export_tflite
from waste_vision.training.features import LiteRTTrunk
from waste_vision.training.fielddata import labtrash_crops, labtrash_frames, unknown_items
from waste_vision.training.joint import load_stage, set_tail_learning
from waste_vision.training.train import STAGE_FILES, assemble, class_weights, update_manifest

STAGES = ("material", "organic-recyclable")


def cached_views(
    run: LiteRTTrunk,
    images,
    views: int,
    size: int,
    seed: int,
    cache: Path,
    name: str,
    belts,
    place: float,
) -> np.ndarray:
    """Trunk outputs (views, n, 7, 7, C) float16: view 0 plain, the rest field views.

    ``images``: paths or RGB arrays. Stored under ``cache`` by ``name`` (which must change
    when the inputs do)."""
    path = cache / f"{name}.npy"
    if path.exists():
        return np.load(path)
    rng = np.random.default_rng(seed)
    bank = surface_bank(rng) if views > 1 else []
    out = None
    for i, item in enumerate(tqdm(images, desc=name, unit="img", mininterval=20)):
        rgb = read_rgb(Path(item)) if isinstance(item, (str, Path)) else item
        batch = [np.clip(resize_for_model(rgb, (size, size)), 0, 255)]
        if views > 1:
            work = work_size(rgb)
            mask = board_mask(work) if place else None  # the same for every view
            batch += [
                field_view(work, rng, (size, size), belts, place, bank, mask)
                for _ in range(views - 1)
            ]
        feats = run(np.stack(batch))
        if out is None:
            out = np.zeros((views, len(images), *feats.shape[1:]), np.float16)
        out[:, i] = feats
    assert out is not None, f"{name}: no images"
    np.save(path, out)
    return out


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def thin(files: LabelledFiles, every: int) -> LabelledFiles:
    """Every n-th photo of the stage's own source (the first ``files.primary``), all extras."""
    n = getattr(files, "primary", len(files.paths))
    own = range(0, n, max(every, 1))
    keep = [*own, *range(n, len(files.paths))]
    thinned = LabelledFiles(
        [files.paths[i] for i in keep],
        [files.labels[i] for i in keep],
        sources=[files.sources[i] for i in keep],
    )
    thinned.primary = len(own)
    return thinned


def choose_epoch(history: list[dict], max_clean_drop: float) -> int:
    """The epoch with the highest field score (mean of labtrash validation accuracy and the
    share of held-out unknown items whose top probability is below 0.5) among the trained
    epochs whose
    clean material validation accuracy, overall and per source (``clean_acc_<source>``), is
    at most ``max_clean_drop`` below epoch 0's; epoch 0 (the shipped tail) when none
    qualifies."""
    keys = [k for k in history[0] if k.startswith("clean_acc")]

    def keeps_clean(row: dict) -> bool:
        return all(float(row[k]) >= float(history[0][k]) - max_clean_drop - 1e-9 for k in keys)

    ok = [r for r in history[1:] if keeps_clean(r)]
    return int(max(ok, key=lambda r: float(r["field_score"]))["epoch"]) if ok else 0


def train_field(args) -> None:
    keras.utils.set_random_seed(args.seed)
    start = time.monotonic()
    models, out, cache = Path(args.models), Path(args.out), Path(args.cache)
    for d in (out, cache, Path(args.run_dir)):
        d.mkdir(parents=True, exist_ok=True)
    stage = args.stage
    trunk, tail, summary = load_stage(models, stage)
    n_classes = len(summary["labels"])
    size = summary["input_size"][0]
    run = LiteRTTrunk(
        trunk,
        cache,
        f"field-{summary['backbone']}{summary['split_block']}-{Path(models).resolve().name}",
    )

    # --- data
    if stage == "material":
        train = stage_split(args.material_data, stage, "TRAIN", args.material_extra)
        val = stage_split(args.material_data, stage, "VALIDATION", args.material_extra)
    else:
        train = thin(
            stage_split(args.stage1_data, stage, "TRAIN", args.stage1_extra), args.train_every
        )
        val = stage_split(args.stage1_data, stage, "VALIDATION", args.stage1_extra)
    lt_train = labtrash_crops(args.labtrash, "train")
    lt_val = labtrash_crops(args.labtrash, "valid")
    if stage != "material":  # every labtrash item is recyclable
        lt_train.labels = [1] * len(lt_train.labels)
        lt_val.labels = [1] * len(lt_val.labels)
    # items of no class we name: outlier exposure, for the material stage only
    material = stage == "material"
    unk_train = unknown_items(args.other, args.material_data, "TRAIN") if material else []
    unk_val = unknown_items(args.other, args.material_data, "VALIDATION") if material else []
    frames = labtrash_frames(args.labtrash, "train")
    belts = belt_crops(
        [f for f, _ in frames],
        [np.array([b[1:] for b in bx]) for _, bx in frames],
        np.random.default_rng(args.seed),
    )
    print(
        f"{stage}: {len(train.paths)} train / {len(val.paths)} val photos; labtrash crops "
        f"{len(lt_train.images)} train / {len(lt_val.images)} val; unknown items "
        f"{len(unk_train)} train / {len(unk_val)} val; {len(belts)} belt crops",
        flush=True,
    )

    v = args.views
    tag = f"v{v}-s{args.seed}"
    # material keeps its cache names (runs 1-3); stage 1 gets its own
    pre = "mat" if stage == "material" else f"s1e{args.train_every}"
    x_mat = cached_views(
        run, train.paths, v, size, args.seed, cache, f"{pre}-train-{tag}", belts, args.place
    )
    x_lt = cached_views(
        run, lt_train.images, v, size, args.seed + 1, cache, f"lt-train-{tag}", belts, 0.0
    )
    x_unk = (
        cached_views(
            run, unk_train, v, size, args.seed + 2, cache, f"unk-train-{tag}", belts, args.place
        )
        if material
        else None
    )
    xv_lt = cached_views(run, lt_val.images, 1, size, 0, cache, "lt-val", belts, 0)[0]
    xv_unk = (
        cached_views(run, unk_val, 1, size, 0, cache, "unk-val", belts, 0)[0] if material else None
    )
    xv_field: np.ndarray | None = None
    if stage == "material":
        xv_mat = cached_views(run, val.paths, 1, size, 0, cache, "mat-val", belts, 0)[0]
    else:  # stage 1: plain and one field view of every validation photo (fixed seed)
        xv_mat, xv_field = cached_views(
            run, val.paths, 2, size, 7, cache, "s1-val-field", belts, args.place
        )
    print(f"features cached after {(time.monotonic() - start) / 60:.1f} min", flush=True)

    x_lab = np.concatenate([x_mat.reshape(-1, *x_mat.shape[2:]), x_lt.reshape(-1, *x_lt.shape[2:])])
    y_lab = np.concatenate(
        [np.tile(np.asarray(train.labels), v), np.tile(np.asarray(lt_train.labels), v)]
    )
    x_out = x_unk.reshape(-1, *x_unk.shape[2:]) if x_unk is not None else x_lab[:0]
    x_clean = x_mat[0].copy()  # the plain view of every training photo, for distillation
    if args.keep_data and stage == "material":
        # stage 1's recyclable TRAIN photos (web photos of every kind of recyclable item):
        # distilled too, so outlier exposure does not make them "uncertain" after stage 1
        s1 = stage_split(args.keep_data, "organic-recyclable", "TRAIN")
        keep = [p for p, y in zip(s1.paths, s1.labels, strict=False) if y == 1][:: args.keep_every]
        x_keep = cached_views(
            run, keep, 1, size, 0, cache, f"keep-{len(keep)}-{Path(args.keep_data).name}", belts, 0
        )[0]
        x_clean = np.concatenate([x_clean, x_keep])
        print(f"distilled on {len(x_clean)} plain photos ({len(keep)} stage-1 recyclable)")
    y_val, y_lt = np.asarray(val.labels), np.asarray(lt_val.labels)
    del x_mat, x_lt, x_unk
    oe_weight = args.oe_weight if stage == "material" else 0.0

    # --- train the tail: class-weighted cross-entropy on materials plus outlier exposure
    set_tail_learning(tail)
    weights = class_weights(np.asarray(train.labels + lt_train.labels), n_classes)
    w = tf.constant([weights[i] for i in range(n_classes)], tf.float32)
    steps = len(x_lab) // args.batch
    warmup = min(50, steps * args.epochs // 2)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0,
        max(steps * args.epochs - warmup, 1),
        alpha=0.05,
        warmup_target=args.lr,
        warmup_steps=warmup,
    )
    optimizer = keras.optimizers.Adam(schedule)
    variables = tail.trainable_variables

    def two_class(z):
        """Stage 1's single logit as the logits of [organic, recyclable] (softmax of [0, z]
        is [1 - sigmoid(z), sigmoid(z)]), so one loss and one validation serve both stages."""
        return tf.concat([tf.zeros_like(z), z], 1) if z.shape[-1] == 1 else z

    @tf.function
    def step(x, y, xo, xc, pc):
        nl, no = tf.shape(x)[0], tf.shape(xo)[0]
        with tf.GradientTape() as tape:
            z = two_class(tail(tf.concat([x, xo, xc], 0), training=True))
            zl, zo, zc = z[:nl], z[nl : nl + no], z[nl + no :]
            per = tf.nn.sparse_softmax_cross_entropy_with_logits(y, zl)
            sw = tf.gather(w, y)
            ce = tf.reduce_sum(per * sw) / tf.reduce_sum(sw)
            # cross-entropy to the uniform distribution over the five materials
            oe = (
                tf.reduce_mean(tf.reduce_logsumexp(zo, 1) - tf.reduce_mean(zo, 1))
                if oe_weight
                else tf.constant(0.0)
            )
            # distillation: on plain photos, stay close to the shipped tail's probabilities
            kd = tf.reduce_mean(
                tf.reduce_sum(pc * (tf.math.log(pc + 1e-8) - tf.nn.log_softmax(zc)), 1)
            )
            loss = ce + oe_weight * oe + args.distill * kd
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=False))
        return ce, oe

    @tf.function
    def logits_of(x):
        return two_class(tail(x, training=False))

    def all_logits(x):
        return np.concatenate(
            [
                logits_of(tf.constant(x[i : i + 128], tf.float32)).numpy()
                for i in range(0, len(x), 128)
            ]
        )

    def validate(epoch: int) -> dict:
        z = all_logits(xv_mat)
        t = fit_temperature(z, y_val)
        p_lt = softmax(all_logits(xv_lt) / t)
        pv = softmax(z / t)
        row = {
            "epoch": epoch,
            "temperature": t,
            "clean_acc": float(np.mean(pv.argmax(1) == y_val)),
            "clean_loss": float(-np.mean(np.log(pv[np.arange(len(y_val)), y_val] + 1e-9))),
            "labtrash_acc": float(np.mean(p_lt.argmax(1) == y_lt)),
            "known_below_half": float(np.mean(pv.max(1) < 0.5)),
        }
        sources = np.asarray(val.sources)
        for s in dict.fromkeys(val.sources):
            row[f"clean_acc_{s}"] = float(
                np.mean(pv.argmax(1)[sources == s] == y_val[sources == s])
            )
        if xv_unk is not None:
            p_unk = softmax(all_logits(xv_unk) / t)
            row["unknown_below_half"] = float(np.mean(p_unk.max(1) < 0.5))
        if xv_field is None:
            row["field_score"] = (row["labtrash_acc"] + row["unknown_below_half"]) / 2
        else:
            row["field_acc"] = float(np.mean(all_logits(xv_field).argmax(1) == y_val))
            row["field_score"] = (row["labtrash_acc"] + row["field_acc"]) / 2
        return row

    run_dir = Path(args.run_dir)
    history: list[dict[str, Any]]
    if args.reselect:
        # no training: the epochs of the run in --run-dir, chosen again and written
        with open(run_dir / "field_log.csv") as f:
            history = [
                {k: float(v) if v not in ("", None) else None for k, v in r.items()}
                for r in csv.DictReader(f)
            ]
        for r in history:
            r["epoch"] = int(r["epoch"])
    else:
        history = [validate(0)]
        print("epoch 0 (shipped tail):", history[0], flush=True)
    rng = np.random.default_rng(args.seed)
    n_out = max(args.batch // 4, 1) if len(x_out) else 0
    n_clean = max(args.batch // 2, 1) if args.distill else 1
    teacher = softmax(all_logits(x_clean)) if not args.reselect else None
    for epoch in range(1, 0 if args.reselect else args.epochs + 1):
        assert teacher is not None  # made whenever epochs run (not with --reselect)
        order = rng.permutation(len(x_lab))
        bar = tqdm(range(steps), desc=f"epoch {epoch}/{args.epochs}", unit="batch", mininterval=30)
        ce_run = oe_run = 0.0
        for i in bar:
            idx = np.sort(order[i * args.batch : (i + 1) * args.batch])
            oidx = rng.integers(0, len(x_out), n_out) if n_out else np.zeros(0, int)
            cidx = rng.integers(0, len(x_clean), n_clean)
            ce, oe = step(
                tf.constant(x_lab[idx], tf.float32),
                tf.constant(y_lab[idx]),
                tf.constant(x_out[oidx], tf.float32),
                tf.constant(x_clean[cidx], tf.float32),
                tf.constant(teacher[cidx], tf.float32),
            )
            ce_run, oe_run = 0.98 * ce_run + 0.02 * float(ce), 0.98 * oe_run + 0.02 * float(oe)
            if i % 50 == 0:
                bar.set_postfix(
                    ce=f"{ce_run / (1 - 0.98 ** (i + 1)):.3f}",
                    oe=f"{oe_run / (1 - 0.98 ** (i + 1)):.3f}",
                )
        row = validate(epoch)
        row["minutes"] = (time.monotonic() - start) / 60
        history.append(row)
        print(f"epoch {epoch}:", row, flush=True)
        np.savez(run_dir / f"epoch{epoch}.npz", *(v_.numpy() for v_ in tail.weights))
        with open(run_dir / "field_log.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(history[-1]))
            writer.writeheader()
            writer.writerows([{k: r.get(k, "") for k in history[-1]} for r in history])
        if row["minutes"] * (epoch + 1) / epoch > args.max_minutes:
            print(f"stopping after epoch {epoch}: another would pass {args.max_minutes} min")
            break

    best = choose_epoch(history, args.max_clean_drop)
    print(f"chosen epoch {best}: {history[best]}", flush=True)
    if best == 0:
        print("no trained epoch keeps the clean validation accuracy; nothing written")
        return
    saved = np.load(run_dir / f"epoch{best}.npz")
    for var, key in zip(tail.weights, saved.files, strict=False):
        var.assign(saved[key])

    # --- export: the other stage as shipped, the new stage, the fused model, the manifest
    other = next(x for x in ("organic-recyclable", "material") if x != stage)
    for ext in (".keras", ".tflite", ".json"):
        shutil.copy2(models / f"{STAGE_FILES[other]}{ext}", out / f"{STAGE_FILES[other]}{ext}")
    manifest = json.loads((models / "cascade.json").read_text())
    manifest.pop("fused_int8", None)  # remade by quantize for the new models
    if stage == "material":
        manifest.pop("reference", None)  # the embeddings change with the material tail
    elif "reference" in manifest:
        shutil.copy2(models / manifest["reference"]["file"], out / manifest["reference"]["file"])
    (out / "cascade.json").write_text(json.dumps(manifest, indent=2) + "\n")
    temperature = history[best]["temperature"]
    new = dict(summary)
    new.pop("joint", None)
    for key in [k for k in new if k.startswith("val_on_board")]:
        new.pop(key)  # figures of the shipped tail, not measured here
    new.update(
        temperature=temperature,
        val_accuracy=history[best]["clean_acc"],
        val_accuracy_per_source={
            s: history[best][f"clean_acc_{s}"] for s in dict.fromkeys(val.sources)
        },
        field={
            "trunk": f"{models} (shipped, unchanged)",
            "views": v,
            "place": args.place,
            "oe_weight": oe_weight,
            "train_every": args.train_every if stage != "material" else 1,
            "distill": args.distill,
            "keep_data": str(args.keep_data) if args.keep_data else None,
            "lr": args.lr,
            "batch": args.batch,
            "epochs_run": len(history) - 1,
            "chosen_epoch": best,
            "max_clean_drop": args.max_clean_drop,
            "labtrash_train_crops": len(lt_train.images),
            "unknown_train": len(unk_train),
            "history": history,
            "earlier": summary.get("joint", {}).get("start"),
        },
    )
    base = out / STAGE_FILES[stage]
    parts = (stage, trunk, tail, summary["backbone"], summary["split_block"], temperature)
    assemble(*parts, "float16").save(f"{base}.keras")
    export_tflite(assemble(*parts), Path(f"{base}.tflite"))
    (out / f"{STAGE_FILES[stage]}.json").write_text(json.dumps(new, indent=2))
    update_manifest(out)
    print(f"wrote {out} after {(time.monotonic() - start) / 60:.1f} min")


def main(argv=None) -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stage", choices=STAGES, default="material")
    p.add_argument("--models", type=Path, default=Path("models"))
    p.add_argument("--stage1-data", type=Path, default=Path("work/kaggle-or-split"))
    p.add_argument(
        "--stage1-extra",
        type=Path,
        action="append",
        default=[],
        help="for --stage organic-recyclable: more split folders (their materials = recyclable)",
    )
    p.add_argument(
        "--train-every", type=int, default=1, help="stage 1: every n-th photo of --stage1-data"
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--material-data", type=Path, default=Path("work/trashnet-split"))
    p.add_argument("--material-extra", type=Path, action="append", default=[])
    p.add_argument("--labtrash", type=Path, default=Path("../shared/datasets/labtrash"))
    p.add_argument("--other", type=Path, default=Path("../shared/datasets/garbage12-other"))
    p.add_argument("--views", type=int, default=6, help="per photo: 1 plain + field views")
    p.add_argument(
        "--place", type=float, default=0.5, help="chance a field view lays the item on a surface"
    )
    p.add_argument("--oe-weight", type=float, default=0.5)
    p.add_argument(
        "--distill",
        type=float,
        default=0.0,
        help="weight of a distillation loss towards the shipped tail on plain "
        "photos (keeps clean accuracy)",
    )
    p.add_argument(
        "--keep-data",
        type=Path,
        default=None,
        help="a stage-1 split folder whose recyclable TRAIN photos join the "
        "distillation set (with --distill)",
    )
    p.add_argument("--keep-every", type=int, default=2, help="every n-th of those photos")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--max-clean-drop", type=float, default=0.01)
    p.add_argument("--max-minutes", type=float, default=1e9)
    p.add_argument("--cache", type=Path, default=Path("work/field-cache"))
    p.add_argument("--run-dir", type=Path, default=Path("work/runs/field"))
    p.add_argument(
        "--reselect",
        action="store_true",
        help="train nothing: choose among the epochs saved in --run-dir and write",
    )
    p.add_argument("--seed", type=int, default=1337)
    train_field(p.parse_args(argv))


if __name__ == "__main__":
    main()
