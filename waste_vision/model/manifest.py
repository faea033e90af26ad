"""``models/cascade.json``: which model files make the cascade, their labels and thresholds.

Loading validates everything a wrong file could break later, so the user gets one clear
line naming the file instead of a failure deep inside inference.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from waste_vision.errors import UserError

MANIFEST_NAME = "cascade.json"
STAGE_NAMES = ("organic-recyclable", "material")


@dataclass(frozen=True)
class StageSpec:
    name: str
    labels: list[str]
    input_size: tuple[int, int]
    keras: Path | None
    tflite: Path | None
    threshold: float = 0.5
    metrics: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    root: Path
    stages: list[StageSpec]
    fused_tflite: Path | None = None
    fused_int8_tflite: Path | None = None  # the same, quantized to int8 (used with --int8)
    min_confidence: float = 0.5  # below it the final label is "uncertain" (see DecisionRule)
    # embeddings of base-class training photos: what a taught class must stand out from
    reference: Path | None = None
    # below this embedding length the final label is "uncertain" (see DecisionRule)
    min_embedding_norm: float = 0.0

    def stage(self, name: str) -> StageSpec:
        return next(s for s in self.stages if s.name == name)

    def fingerprint(self) -> str:
        """A short name for exactly these models (12 hex digits of a SHA-256 over every stage's
        labels, input size and threshold, the decision cut and the ``.tflite`` files). Events
        and site profiles record it, so figures and taught examples can be told apart when the
        models change. The ``.keras`` files are left out: the bundle ships without them and
        runs the same models."""
        spec = [(s.name, s.labels, s.input_size, s.threshold) for s in self.stages]
        digest = hashlib.sha256(json.dumps([spec, self.min_confidence]).encode())
        files = [self.fused_tflite, self.fused_int8_tflite, *(s.tflite for s in self.stages)]
        for path in files:
            if path is not None:
                digest.update(path.name.encode())
                with open(path, "rb") as f:
                    digest.update(hashlib.file_digest(f, "sha256").digest())
        return digest.hexdigest()[:12]


def _file(root: Path, value, what: str, manifest: Path) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise UserError(f"{manifest}: {what} must be a file name")
    path = root / value
    if not path.is_file():
        raise UserError(
            f"{manifest}: {what} file {path} is missing; restore the models folder or pass --models"
        )
    return path


def _stage(root: Path, raw, index: int, manifest: Path) -> StageSpec:
    if not isinstance(raw, dict):
        raise UserError(f"{manifest}: stage {index} must be an object")
    name = raw.get("name")
    expected = STAGE_NAMES[index]
    if name != expected:
        raise UserError(f"{manifest}: stage {index} must be named {expected!r}, not {name!r}")
    labels = raw.get("labels")
    if (
        not isinstance(labels, list)
        or len(labels) < 2
        or not all(isinstance(x, str) and x for x in labels)
        or len(set(labels)) != len(labels)
    ):
        raise UserError(f"{manifest}: stage {name!r} needs a list of at least two distinct labels")
    if index == 0 and labels != ["organic", "recyclable"]:
        raise UserError(f"{manifest}: stage {name!r} labels must be ['organic', 'recyclable']")
    size = raw.get("input_size")
    if (
        not isinstance(size, list)
        or len(size) != 2
        or not all(isinstance(v, int) and 8 <= v <= 4096 for v in size)
    ):
        raise UserError(f"{manifest}: stage {name!r} input_size must be [height, width]")
    threshold = raw.get("threshold", 0.5)
    if (
        not isinstance(threshold, (int, float))
        or isinstance(threshold, bool)
        or not math.isfinite(threshold)
        or not 0.0 < threshold < 1.0
    ):
        raise UserError(f"{manifest}: stage {name!r} threshold must be a number in (0, 1)")
    keras_file = _file(root, raw.get("keras"), f"stage {name!r} keras", manifest)
    tflite_file = _file(root, raw.get("tflite"), f"stage {name!r} tflite", manifest)
    if keras_file is None and tflite_file is None:
        raise UserError(f"{manifest}: stage {name!r} names no model file")
    metrics = raw.get("metrics", {})
    return StageSpec(
        name,
        list(labels),
        (size[0], size[1]),
        keras_file,
        tflite_file,
        float(threshold),
        metrics if isinstance(metrics, dict) else {},
    )


def load_manifest(models_dir: Path) -> Manifest:
    """Read and validate ``models_dir/cascade.json``; raises ``UserError`` (exit 2) on any fault."""
    models_dir = Path(models_dir)
    path = models_dir / MANIFEST_NAME
    if not models_dir.is_dir():
        raise UserError(
            f"models folder {models_dir} does not exist; pass --models DIR "
            "pointing at a folder with cascade.json"
        )
    if not path.is_file():
        raise UserError(f"{path} is missing; the models folder needs its manifest")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path} is not valid JSON ({str(exc).splitlines()[0]})") from None
    stages = raw.get("stages") if isinstance(raw, dict) else None
    if not isinstance(stages, list) or len(stages) != len(STAGE_NAMES):
        raise UserError(f"{path}: 'stages' must list the {len(STAGE_NAMES)} stages in order")
    specs = [_stage(models_dir, s, i, path) for i, s in enumerate(stages)]
    fused = {}
    for key in ("fused", "fused_int8"):
        entry = raw.get(key)
        if entry is not None:
            if not isinstance(entry, dict):
                raise UserError(f"{path}: '{key}' must be an object")
            fused[key] = _file(models_dir, entry.get("tflite"), f"{key} tflite", path)
            outputs = entry.get("outputs", ["stage1", "stage2"])
            if outputs not in (["stage1", "stage2"], ["stage1", "stage2", "embedding"]):
                raise UserError(
                    f"{path}: '{key}' outputs must be [stage1, stage2] or "
                    "[stage1, stage2, embedding]"
                )
    reference = raw.get("reference")
    reference_file = None
    if reference is not None:
        if not isinstance(reference, dict):
            raise UserError(f"{path}: 'reference' must be an object")
        reference_file = _file(models_dir, reference.get("file"), "reference", path)
    decision = raw.get("decision", {})
    min_confidence = decision.get("min_confidence", 0.5) if isinstance(decision, dict) else None
    if (
        not isinstance(min_confidence, (int, float))
        or isinstance(min_confidence, bool)
        or not math.isfinite(min_confidence)
        or not 0.0 <= min_confidence < 1.0
    ):
        raise UserError(f"{path}: 'decision' must be an object with min_confidence in [0, 1)")
    min_norm = decision.get("min_embedding_norm", 0.0)
    if (
        not isinstance(min_norm, (int, float))
        or isinstance(min_norm, bool)
        or not math.isfinite(min_norm)
        or min_norm < 0
    ):
        raise UserError(f"{path}: decision.min_embedding_norm must be a number >= 0")
    return Manifest(
        models_dir,
        specs,
        fused.get("fused"),
        fused.get("fused_int8"),
        float(min_confidence),
        reference=reference_file,
        min_embedding_norm=float(min_norm),
    )
