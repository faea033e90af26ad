"""Train one stage of the cascade: data, model, train, calibrate, export — top to bottom.

The model is EfficientNet-Lite (0, 1 or 2) split in two: a frozen trunk (the first
``--split-block`` blocks, shared by both stages, so a frame needs one trunk pass) and a
per-stage tail (by default the last block and the 1280-channel head, fine-tuned) with a
linear classifier. Trunk outputs
for every training image and several augmented views of it are cached, so an epoch only
runs the tail: that is what makes fine-tuning fit in minutes on 2 CPU cores.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers

from waste_vision.training.backbone import VARIANTS, num_blocks, tail_features, trunk_model
from waste_vision.training.calibration import fit_temperature, roc_threshold
from waste_vision.training.data import STAGE_LABELS, stage_split
from waste_vision.training.export import export_tflite
from waste_vision.training.features import trunk_features
from waste_vision.training.fuse import export_fused

DEFAULT_INPUT_SIZE = 224  # for the frozen whole-network backbones (MobileNet, keras:)
STAGE_FILES = {"organic-recyclable": "stage1_organic_recyclable", "material": "stage2_material"}


def input_size(backbone: str) -> int:
    """A Lite variant's native resolution (224/240/260); 224 for the others."""
    return VARIANTS[backbone].size if backbone in VARIANTS else DEFAULT_INPUT_SIZE


def default_split_block(backbone: str) -> int:
    """All blocks but the last stay frozen (Lite0: 15 of 16; Lite1/2: 20 of 21)."""
    return num_blocks(backbone) - 1 if backbone in VARIANTS else 0


def build_tail(
    stage: str, n_classes: int, backbone: str, split_block: int, pretrained: bool = True
) -> keras.Model:
    """Trainable part: the backbone's blocks after the split + head conv, pooled, dropout,
    linear logits."""
    prefix = "s1_" if stage == "organic-recyclable" else "s2_"
    inputs, x = tail_features(
        backbone, split_block, input_size(backbone), name_prefix=prefix, pretrained=pretrained
    )
    x = layers.GlobalAveragePooling2D(name=f"{prefix}avg_pool")(x)
    x = layers.Dropout(0.3, name=f"{prefix}dropout")(x)
    units = 1 if n_classes == 2 else n_classes
    logits = layers.Dense(units, name=f"{prefix}logits")(x)
    return keras.Model(inputs, logits, name=f"{prefix}tail")


def set_tail_trainable(tail: keras.Model, trainable: bool) -> None:
    """Warm-up trains only the classifier; fine-tuning also the convolutions (BN stays frozen)."""
    for layer in tail.layers:
        if isinstance(layer, layers.Dense):
            layer.trainable = True
        elif isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
        else:
            layer.trainable = trainable


def loss_for(n_classes: int):
    if n_classes == 2:
        return keras.losses.BinaryCrossentropy(from_logits=True), [
            keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")
        ]
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True), [
        keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    ]


def class_weights(y: np.ndarray, n_classes: int) -> dict[int, float]:
    counts = np.bincount(y, minlength=n_classes).astype(float)
    return {i: float(len(y) / (n_classes * c)) for i, c in enumerate(counts) if c}


def assemble(
    stage: str,
    trunk: keras.Model,
    tail: keras.Model,
    backbone: str,
    split_block: int,
    temperature: float,
    dtype: str = "float32",
) -> keras.Model:
    """A fresh, uncompiled stage model: RGB [0, 255] in, calibrated probabilities out.

    The temperature is folded into the classifier's weights, so the shipped model needs no
    extra step; ``dtype="float16"`` stores the weights in half precision.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype)
    try:
        n = tail.layers[-1].units
        size = input_size(backbone)
        new_trunk = trunk_model(backbone, split_block, size, pretrained=False)
        new_tail = build_tail(stage, 2 if n == 1 else n, backbone, split_block, pretrained=False)
        inputs = keras.Input((size, size, 3), name="image")
        logits = new_tail(new_trunk(inputs))
        act = "sigmoid" if n == 1 else "softmax"
        probs = layers.Activation(act, dtype="float32", name="probabilities")(logits)
        model = keras.Model(inputs, probs, name=STAGE_FILES[stage])
    finally:
        keras.config.set_dtype_policy(previous)
    new_trunk.set_weights(trunk.get_weights())
    weights = tail.get_weights()
    weights[-2:] = [weights[-2] / temperature, weights[-1] / temperature]
    new_tail.set_weights(weights)
    return model


def train_stage(args) -> None:
    keras.utils.set_random_seed(args.seed)
    if args.split_block is None:
        args.split_block = default_split_block(args.backbone)
    size = input_size(args.backbone)
    shape = (size, size)
    stage, labels = args.stage, STAGE_LABELS[args.stage]
    n = len(labels)
    out = Path(args.out)
    run_dir = Path(args.cache).parent / "runs" / stage
    run_dir.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)

    # --- data: cached trunk features of the train views and the plain validation images
    extras = [*args.extra_recyclable, *args.extra]
    train = stage_split(args.data, stage, "TRAIN", extras)
    val = stage_split(args.data, stage, "VALIDATION", extras)
    trunk = trunk_model(args.backbone, args.split_block, size)
    trunk.trainable = False
    x_train = trunk_features(
        trunk,
        train.paths,
        shape,
        args.views,
        args.cache,
        args.seed,
        f"{stage}-train",
        board=args.on_board,
    )
    x_val = trunk_features(trunk, val.paths, shape, 1, args.cache, args.seed, f"{stage}-val")[
        0
    ].astype(np.float32)
    y_train = np.tile(np.asarray(train.labels), args.views)
    x_train = x_train.reshape(-1, *x_train.shape[2:]).astype(np.float32)
    y_val = np.asarray(val.labels)
    print(
        f"{stage}: {len(train.paths)} train images x {args.views} views, "
        f"{len(val.paths)} validation images; per source: "
        + ", ".join(
            f"{s} {train.sources.count(s)}/{val.sources.count(s)}"
            for s in dict.fromkeys(train.sources)
        )
    )

    # --- model
    tail = build_tail(stage, n, args.backbone, args.split_block)
    loss, metrics = loss_for(n)
    weights = class_weights(np.asarray(train.labels), n)
    fit = {
        "x": x_train,
        "y": y_train,
        "validation_data": (x_val, y_val),
        "batch_size": 64,
        "class_weight": weights,
        "verbose": 1 if os.isatty(1) else 2,
    }

    # --- train: warm up the classifier, then fine-tune the tail with early stopping
    set_tail_trainable(tail, False)
    tail.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=metrics)
    tail.fit(
        epochs=args.warmup_epochs,
        callbacks=[keras.callbacks.CSVLogger(str(run_dir / "warmup_log.csv"))],
        **fit,
    )
    set_tail_trainable(tail, True)
    tail.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss, metrics=metrics)
    best = run_dir / "best_tail.weights.h5"
    tail.save_weights(str(best))  # the warm-up result, if fine-tuning never improves on it
    tail.fit(
        epochs=args.epochs,
        callbacks=[
            keras.callbacks.CSVLogger(str(run_dir / "finetune_log.csv")),
            keras.callbacks.ModelCheckpoint(
                str(best), monitor="val_loss", save_best_only=True, save_weights_only=True
            ),
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=args.patience, restore_best_weights=True
            ),
        ],
        **fit,
    )
    tail.load_weights(str(best))

    # --- calibrate on validation: temperature, and stage 1's ROC threshold
    val_logits = np.asarray(tail.predict(x_val, batch_size=128, verbose=0))
    temperature = fit_temperature(val_logits, y_val)
    scaled = val_logits / temperature
    summary = {
        "stage": stage,
        "labels": labels,
        "temperature": temperature,
        "backbone": args.backbone,
        "split_block": args.split_block,
        "input_size": list(shape),
        "train_images": len(train.paths),
        "views": args.views,
        "on_board": args.on_board,
        "extra": [str(p) for p in extras],
    }
    sources = np.asarray(val.sources)
    if n == 2:
        # One symmetric rule (see Cascade): after temperature scaling the calibrated
        # probability is cut at 0.5. Youden's point is recorded to show how far off it is.
        p = 1 / (1 + np.exp(-scaled[:, 0]))
        own = slice(0, val.primary)
        summary["threshold"] = 0.5
        summary["youden_threshold"] = roc_threshold(y_val[own], p[own])
        predicted = (p >= 0.5).astype(int)
        summary["val_accuracy"] = float(np.mean(predicted[own] == y_val[own]))
        # The shortcut check on validation: the stage's own photos laid on a plain light board
        # must keep their label (organic ones above all), as they do without the board.
        x_board = trunk_features(
            trunk,
            val.paths[own],
            shape,
            1,
            args.cache,
            args.seed,
            f"{stage}-val-board",
            only_board=True,
        )[0].astype(np.float32)
        board_logits = np.asarray(tail.predict(x_board, batch_size=128, verbose=0))
        pb = 1 / (1 + np.exp(-board_logits[:, 0] / temperature))
        said = pb >= summary["threshold"]
        summary["val_on_board_accuracy"] = float(np.mean(said == y_val[own]))
        summary["val_on_board_organic"] = float(np.mean(~said[y_val[own] == 0]))
    else:
        predicted = scaled.argmax(1)
        summary["val_accuracy"] = float(np.mean(predicted == y_val))
    summary["val_accuracy_per_source"] = {
        s: float(np.mean(predicted[sources == s] == y_val[sources == s]))
        for s in dict.fromkeys(val.sources)
    }
    print(
        f"{stage}: validation accuracy {summary['val_accuracy']:.4f}, T={temperature:.3f}"
        + f" (per source {summary['val_accuracy_per_source']})"
        + (
            f", on a plain board {summary['val_on_board_accuracy']:.4f} (organic kept "
            f"{summary['val_on_board_organic']:.4f})"
            if "val_on_board_accuracy" in summary
            else ""
        )
    )

    # --- export the whole stage: .keras and .tflite, plus the tail alone for fusing
    base = out / STAGE_FILES[stage]
    parts = (stage, trunk, tail, args.backbone, args.split_block, temperature)
    assemble(*parts, "float16").save(f"{base}.keras")
    export_tflite(assemble(*parts), Path(f"{base}.tflite"))
    tail.save_weights(run_dir / "tail.weights.h5")
    (out / f"{STAGE_FILES[stage]}.json").write_text(json.dumps(summary, indent=2))
    print(f"{stage}: wrote {base}.keras and {base}.tflite")
    manifest = update_manifest(out)
    if manifest:
        print(f"updated {manifest}")


def update_manifest(models: Path) -> Path | None:
    """Write ``cascade.json`` from the per-stage summaries once both stages are trained."""
    entries = []
    for stage, stem in STAGE_FILES.items():
        summary_path = models / f"{stem}.json"
        if not summary_path.exists():
            return None
        summary = json.loads(summary_path.read_text())
        entry = {
            "name": stage,
            "keras": f"{stem}.keras",
            "tflite": f"{stem}.tflite",
            "labels": summary["labels"],
            "input_size": summary["input_size"],
            "metrics": {
                "val_accuracy": round(summary["val_accuracy"], 4),
                "temperature": round(summary["temperature"], 4),
            },
        }
        if "threshold" in summary:
            entry["threshold"] = round(summary["threshold"], 6)
        entries.append(entry)
    manifest: dict[str, Any] = {"stages": entries}
    fused = export_fused(models / entries[0]["keras"], models / entries[1]["keras"], models)
    if fused:
        manifest["fused"] = {"tflite": fused.name, "outputs": ["stage1", "stage2", "embedding"]}
    path = models / "cascade.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    for key in ("decision", "fused_int8"):  # chosen or made after training: kept
        if key in old and (key != "fused_int8" or (models / old[key]["tflite"]).exists()):
            manifest[key] = old[key]
    unchanged = set()
    for new, prev in zip(entries, old.get("stages", []), strict=False):
        # keep test figures recorded by 'evaluate' for an unchanged model
        if prev.get("metrics", {}).get("val_accuracy") == new["metrics"]["val_accuracy"]:
            new["metrics"] = {**prev["metrics"], **new["metrics"]}
            unchanged.add(new["name"])
    if "reference" in old:
        if "material" in unchanged and (models / old["reference"]["file"]).exists():
            manifest["reference"] = old["reference"]  # embeddings of the same material tail
        else:
            print(
                f"{path}: the reference embeddings were made with another material stage and "
                "are dropped; site profiles need them: python -m waste_vision.training.reference"
            )
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path
