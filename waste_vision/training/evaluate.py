"""``waste-vision evaluate``: score a shipped stage on held-out photos, write its report.

Runs the same LiteRT model the app uses (so the figures describe what ships) and writes
``<reports>/<name>/``: ``metrics.json``, ``confusion.png``, ``roc.png`` and
``threshold_sweep.png`` (stage 1), and ``worst_mistakes.png``. The models' ``cascade.json``
is changed only with ``--update-manifest``, and then atomically (a temporary file in the same
folder, fsynced, renamed over it): the manifest is what every command loads, so an
evaluation must not edit it by surprise, and a crash must not leave it half written.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from tqdm import tqdm

from waste_vision.errors import UserError
from waste_vision.files import write_atomically
from waste_vision.images import read_rgb, resize_for_model
from waste_vision.model.cascade import UNCERTAIN, Cascade
from waste_vision.model.manifest import MANIFEST_NAME
from waste_vision.resources import default_models_dir
from waste_vision.training.calibration import (
    expected_calibration_error,
    roc_auc,
    roc_curve,
)
from waste_vision.training.data import STAGE_LABELS, class_folders


def per_class_metrics(y: np.ndarray, pred: np.ndarray, labels: list[str]) -> tuple[dict, list]:
    n = len(labels)
    confusion = np.zeros((n, n), int)
    np.add.at(confusion, (y, pred), 1)
    per_class = {}
    for i, name in enumerate(labels):
        tp = confusion[i, i]
        precision = tp / confusion[:, i].sum() if confusion[:, i].sum() else 0.0
        recall = tp / confusion[i].sum() if confusion[i].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": round(float(precision), 4),
            "recall": round(float(recall), 4),
            "f1": round(float(f1), 4),
            "support": int(confusion[i].sum()),
        }
    return per_class, confusion.tolist()


def plot_confusion(confusion: list, labels: list[str], title: str, path: Path) -> None:
    cm = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2.5, 1.1 * len(labels) + 2))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(
                j,
                i,
                cm[i, j],
                ha="center",
                va="center",
                color="white" if cm[i, j] > cm.max() / 2 else "black",
            )
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_roc(y: np.ndarray, p: np.ndarray, threshold: float, path: Path) -> None:
    fpr, tpr, thr = roc_curve(y, p)
    i = int(np.argmin(np.abs(thr - threshold)))
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"AUC = {roc_auc(y, p):.3f}")
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.plot(fpr[i], tpr[i], "o", color="red", label=f"threshold {threshold:.2f} (from validation)")
    ax.set_xlabel("false positive rate (organic called recyclable)")
    ax.set_ylabel("true positive rate (recyclable found)")
    ax.legend(loc="lower right")
    ax.set_title("Stage 1 ROC on test")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_threshold_sweep(y: np.ndarray, p: np.ndarray, threshold: float, path: Path) -> list:
    grid = np.round(np.linspace(0.05, 0.95, 19), 2)
    sweep = []
    for t in grid:
        pred = p >= t
        sweep.append(
            {
                "threshold": float(t),
                "accuracy": round(float(np.mean(pred == y)), 4),
                "organic_recall": round(float(np.mean(~pred[y == 0])), 4),
                "recyclable_recall": round(float(np.mean(pred[y == 1])), 4),
            }
        )
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("accuracy", "organic_recall", "recyclable_recall"):
        ax.plot(grid, [s[key] for s in sweep], marker=".", label=key.replace("_", " "))
    ax.axvline(threshold, color="red", ls="--", label=f"chosen {threshold:.2f}")
    ax.set_xlabel("threshold on P(recyclable)")
    ax.set_ylim(0.5, 1.0)
    ax.legend()
    ax.set_title("Stage 1 threshold sweep on test")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return sweep


def plot_worst_mistakes(images: list[np.ndarray], captions: list[str], path: Path) -> None:
    cols = 4
    rows = max(1, -(-len(images) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.2 * rows))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, im, cap in zip(np.ravel(axes), images, captions, strict=False):
        ax.imshow(im)
        ax.set_title(cap, fontsize=8)
    fig.suptitle("Most confident mistakes on test")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def evaluate_field(args) -> dict:
    """``evaluate --stage field --data WORK``: the field suite (``training/field.py``) on the
    validation splits under WORK (``trashnet-split``, ``garbage12-split``,
    ``kaggle-or-split``) and the shared labtrash and garbage12-other sets, written to
    ``<reports>/field/`` beside the test reports. Validation only, so models can be chosen
    on it."""
    from waste_vision.training.field import write_report

    if getattr(args, "update_manifest", False):
        raise UserError(
            "--update-manifest records test figures; the field suite is validation only "
            "(its report is written to the reports folder): leave the option out"
        )
    models = Path(args.models or default_models_dir())
    work = Path(args.data)
    shared = Path(getattr(args, "shared", None) or "../shared/datasets")
    out = Path(args.reports or models / "reports") / (args.name or "field")
    report = write_report(
        models,
        out,
        work / "trashnet-split",
        [work / "garbage12-split"],
        work / "kaggle-or-split",
        shared / "labtrash",
        shared / "garbage12-other",
    )
    print(
        f"field suite: mean {report['mean']:.2f}% over {', '.join(report['parts'])}; "
        f"report in {out}"
    )
    return report


def evaluate_stage(args) -> dict:
    stage = args.stage
    if stage == "field":
        return evaluate_field(args)
    labels = STAGE_LABELS[stage]
    index = 0 if stage == "organic-recyclable" else 1
    models = Path(args.models or default_models_dir())
    cascade = Cascade(models, backend="litert")
    data = Path(args.data)
    folder = data / "TEST" if (data / "TEST").is_dir() else data
    files = class_folders(folder, stage)
    if not files.paths:
        raise UserError(f"no images of {labels} under {folder}")
    y = np.asarray(files.labels)
    # The shipped path (the fused model where there is one) gives both stages' outputs and
    # the final label under the cascade's decision rule, as a user sees it.
    rows: list[tuple[float, ...]] = []
    finals: list[str] = []
    for path in tqdm(files.paths, desc=f"evaluate {stage}", unit="img"):
        result = cascade.classify(read_rgb(path), all_stages=True)
        stage_result = (result.stage1, result.stage2)[index]
        assert stage_result is not None  # all_stages: stage 2 runs on every image
        rows.append(stage_result.probabilities)
        finals.append(result.label)
    probs = np.asarray(rows)
    if len(labels) == 2:
        pred = (probs[:, 1] >= cascade.rule.stage1_threshold).astype(int)
    else:
        pred = probs.argmax(1)
    confidence = probs[np.arange(len(pred)), pred]
    per_class, confusion = per_class_metrics(y, pred, labels)
    name = args.name or stage
    out = Path(args.reports or models / "reports") / name
    out.mkdir(parents=True, exist_ok=True)
    metrics = {
        "stage": stage,
        "data": str(folder),
        "images": len(y),
        "accuracy": round(float(np.mean(pred == y)), 4),
        "per_class": per_class,
        "confusion_matrix": {"labels": labels, "rows_true_cols_predicted": confusion},
        "expected_calibration_error": round(expected_calibration_error(confidence, pred == y), 4),
        "final_label": final_label_metrics(stage, labels, y, finals, cascade),
    }
    if len(labels) == 2:
        metrics["threshold"] = cascade.rule.stage1_threshold
        if len(set(y.tolist())) == 2:
            metrics["roc_auc"] = round(roc_auc(y, probs[:, 1]), 4)
            plot_roc(y, probs[:, 1], cascade.rule.stage1_threshold, out / "roc.png")
            metrics["threshold_sweep"] = plot_threshold_sweep(
                y, probs[:, 1], cascade.rule.stage1_threshold, out / "threshold_sweep.png"
            )
    plot_confusion(
        confusion, labels, f"{name}: accuracy {metrics['accuracy']:.3f}", out / "confusion.png"
    )
    wrong = np.where(pred != y)[0]
    worst = wrong[np.argsort(-confidence[wrong])][:12]
    plot_worst_mistakes(
        [resize_for_model(read_rgb(files.paths[i]), (160, 160)).astype(np.uint8) for i in worst],
        [
            f"{files.paths[i].name}\ntrue {labels[y[i]]}, said {labels[pred[i]]} "
            f"{confidence[i]:.2f}"
            for i in worst
        ],
        out / "worst_mistakes.png",
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if getattr(args, "update_manifest", False):
        print(f"recorded the test figures in {record_in_manifest(models, index, metrics)}")
    final = metrics["final_label"]
    print(
        f"{name}: accuracy {metrics['accuracy']:.4f} on {len(y)} images, "
        f"ECE {metrics['expected_calibration_error']:.4f}; final label: coverage "
        f"{final['coverage']:.4f}, accuracy where labelled {final['accuracy_labelled']:.4f}, "
        f"right of all {final['right_of_all']:.4f}; report in {out}"
    )
    return metrics


def final_label_metrics(
    stage: str, labels: list[str], y: np.ndarray, finals: list[str], cascade: Cascade
) -> dict:
    """What the user sees: how often a label is given (coverage) and how often it is right.

    For stage-1 test sets a material counts as "recyclable" (they carry no material truth);
    for material sets the truth is the material (a photo called organic is wrong).
    """
    truth = [labels[i] for i in y]
    said = np.asarray(
        [
            ("recyclable" if f not in ("organic", UNCERTAIN) else f)
            if stage == "organic-recyclable"
            else f
            for f in finals
        ]
    )
    labelled = said != UNCERTAIN
    right = said == np.asarray(truth)
    return {
        "min_confidence": cascade.rule.min_confidence,
        "stage1_threshold": cascade.rule.stage1_threshold,
        "coverage": round(float(labelled.mean()), 4),
        "accuracy_labelled": round(float(right[labelled].mean()) if labelled.any() else 0.0, 4),
        "right_of_all": round(float(right.mean()), 4),
    }


def record_in_manifest(models: Path, index: int, metrics: dict) -> Path:
    """Copy the headline test figures into the manifest entry of the stage (atomically)."""
    path = models / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    entry = manifest["stages"][index].setdefault("metrics", {})
    entry["test_accuracy"] = metrics["accuracy"]
    entry["test_images"] = metrics["images"]
    entry["expected_calibration_error"] = metrics["expected_calibration_error"]
    entry["final_label"] = metrics["final_label"]
    if "roc_auc" in metrics:
        entry["roc_auc"] = metrics["roc_auc"]
    write_atomically(path, json.dumps(manifest, indent=2) + "\n")
    return path
