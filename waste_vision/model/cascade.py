"""The two-stage cascade at run time: stage 1 organic vs recyclable, stage 2 the material.

Stage 2 runs only when stage 1 says recyclable (or always, with ``all_stages``). Two
interchangeable backends run the shipped models: LiteRT (``.tflite``, fast on a CPU) and
Keras (``.keras``, used when a GPU is visible or when asked for). Both take RGB uint8/float
frames of any size; resizing to each stage's input happens here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from waste_vision.errors import UserError
from waste_vision.images import resize_for_model
from waste_vision.labels import UNCERTAIN, Bin, base_bin
from waste_vision.model.keras_backend import gpu_visible
from waste_vision.model.litert_backend import LiteRTBatches, LiteRTModel
from waste_vision.model.manifest import Manifest, StageSpec, load_manifest

if TYPE_CHECKING:
    from waste_vision.model.profile import ProfileHead

DEFAULT_MIN_CONFIDENCE = 0.5


@dataclass(frozen=True)
class DecisionRule:
    """The one rule that turns the stages' probabilities into the label a user sees.

    Stage 1 says recyclable when P(recyclable) >= ``stage1_threshold`` (0.5 for calibrated
    models), else organic. Each decision the label rests on (stage 1's, and the material's
    when recyclable) has a confidence: the probability of the label it chose. The final
    label is ``uncertain`` when the weaker of those confidences is below ``min_confidence``
    — the same cut for organic, recyclable and every material — or when the image's
    embedding is shorter than ``min_embedding_norm``: the material tail was trained to give
    items of no class we name (batteries, shoes, clothes, residual trash) small features,
    so a short embedding says "none of ours" even where a softmax still picks a material.
    """

    stage1_threshold: float = 0.5
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    min_embedding_norm: float = 0.0  # 0: no such cut (models without an embedding output)

    def adjusted(
        self, stage1: float | None = None, min_confidence: float | None = None
    ) -> DecisionRule:
        """This rule with the thresholds given changed, clamped into range (the window's
        sliders); None leaves one as it is."""
        rule = self
        if stage1 is not None:
            rule = replace(rule, stage1_threshold=min(max(float(stage1), 0.001), 0.999))
        if min_confidence is not None:
            rule = replace(rule, min_confidence=min(max(float(min_confidence), 0.0), 1.0))
        return rule

    def __post_init__(self):
        for name in ("stage1_threshold", "min_confidence"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise UserError(f"{name} must be a number in [0, 1], not {value!r}")


@dataclass(frozen=True)
class StageResult:
    label: str
    score: float  # probability of ``label``
    probabilities: tuple[float, ...]  # per label, in the manifest's order

    def as_dict(self) -> dict:
        return {"label": self.label, "score": round(self.score, 6)}


@dataclass(frozen=True)
class CascadeResult:
    label: str  # "organic", a material, or "uncertain"
    score: float  # confidence of the final label: the weaker of its decisions' probabilities
    stage1: StageResult
    stage2: StageResult | None
    bin: Bin | None = None  # where the item goes (None when uncertain)
    # how much a site profile's taught photos decided this result: 0 = the base cascade alone
    taught: float = 0.0
    # the material tail's pooled features (where the models give them): what a site
    # profile compares with its taught photos
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)


def choose_backend(requested: str) -> str:
    if requested == "auto":
        return "keras" if gpu_visible() else "litert"
    return requested


def _stage_result(spec: StageSpec, out: np.ndarray, threshold: float = 0.5) -> StageResult:
    out = np.asarray(out, dtype=np.float64).reshape(-1)
    if out.size == 1:  # one sigmoid unit = P(second label)
        p = float(out[0])
        probs: tuple[float, ...] = (1.0 - p, p)
        index = 1 if p >= threshold else 0
    else:
        probs = tuple(float(v) for v in out)
        index = int(np.argmax(out))
    return StageResult(spec.labels[index], probs[index], probs)


class Cascade:
    """Runs the manifest's stages on RGB frames; build once, call per frame."""

    def __init__(
        self,
        models_dir: Path,
        backend: str = "auto",
        threads: int = 2,
        uncertain_below: float | None = None,
        fused: bool = True,
        int8: bool = False,
    ):
        self.manifest: Manifest = load_manifest(models_dir)
        # auto: LiteRT where the .keras models are absent (a wheel install ships none)
        self.backend = (
            choose_backend(backend)
            if backend != "auto" or all(s.keras for s in self.manifest.stages)
            else "litert"
        )
        self.stage1, self.stage2 = self.manifest.stages
        self.model_version = self.manifest.fingerprint()
        self.model_rule = DecisionRule(
            self.stage1.threshold,
            self.manifest.min_confidence if uncertain_below is None else uncertain_below,
            self.manifest.min_embedding_norm,
        )
        self.rule = self.model_rule
        # a site profile's classifier (model/profile.py), replaced whole by ``use_profile``
        self.profile: ProfileHead | None = None
        self._models = [self._load(spec, threads) for spec in self.manifest.stages]
        for spec, model in zip(self.manifest.stages, self._models, strict=False):
            expected = (
                1 if len(spec.labels) == 2 and model.output_sizes[0] == 1 else len(spec.labels)
            )
            if model.output_sizes[0] != expected:
                raise UserError(
                    f"{self.manifest.root / 'cascade.json'}: stage {spec.name!r} lists "
                    f"{len(spec.labels)} labels but its model has {model.output_sizes[0]} "
                    "outputs; fix the labels or restore the model file"
                )
        # One pass through the shared trunk gives both stages (LiteRT only).
        # int8 trades a little agreement with the float models for speed (--int8).
        self._fused = None
        fused_file = self.manifest.fused_int8_tflite if int8 else self.manifest.fused_tflite
        if int8 and (fused_file is None or self.backend != "litert"):
            raise UserError(
                f"--int8 needs the LiteRT backend and a 'fused_int8' model in "
                f"{self.manifest.root / 'cascade.json'}; make one with "
                "'python -m waste_vision.training.quantize' or leave out --int8"
            )
        if (
            fused
            and self.backend == "litert"
            and fused_file
            and self.stage1.input_size == self.stage2.input_size
        ):
            self._fused = LiteRTModel(fused_file, threads)
            self._fused_batches = LiteRTBatches(fused_file, threads)
            if self._fused.output_sizes[:2] != [m.output_sizes[0] for m in self._models]:
                raise UserError(
                    f"{fused_file}: its outputs do not match the two stages; "
                    "restore the models folder"
                )
        # embeddings: the fused model's third output, or the Keras material model's pool
        if self._fused is not None:
            self.embedding_size = (self._fused.output_sizes[2:] or [0])[0]
        else:
            self.embedding_size = (self._models[1].output_sizes[1:] or [0])[0]

    def reset_thresholds(self) -> DecisionRule:
        """Back to the rule the models were calibrated for (the manifest's)."""
        self.rule = self.model_rule
        return self.rule

    @property
    def uses_fused(self) -> bool:
        return self._fused is not None

    def use_profile(self, head: ProfileHead | None) -> None:
        """Classify with a site profile's taught photos from the next image on (None: the base
        cascade alone). One assignment: an image being classified sees the old or the new
        profile, never half of each. An empty profile is the same as none."""
        if head is not None and head.empty:
            head = None
        if head is not None and not self.embedding_size:
            raise UserError(
                f"the models in {self.manifest.root} give no embeddings, which a site profile "
                "needs; use the shipped models (a fused model with an 'embedding' output)"
            )
        self.profile = head

    def _load(self, spec: StageSpec, threads: int):
        if self.backend == "litert":
            if spec.tflite is None:
                raise UserError(f"stage {spec.name!r} has no .tflite model; use --backend keras")
            return LiteRTModel(spec.tflite, threads)
        if self.backend == "keras":
            from waste_vision.model.keras_backend import KerasModel

            if spec.keras is None:
                raise UserError(f"stage {spec.name!r} has no .keras model; use --backend litert")
            return KerasModel(spec.keras, embedding=spec is self.stage2)
        raise UserError(f"unknown backend {self.backend!r}; use auto, litert or keras")

    def run_stage(
        self, index: int, rgb: np.ndarray, rule: DecisionRule | None = None
    ) -> StageResult:
        spec = self.manifest.stages[index]
        x = resize_for_model(rgb, spec.input_size)
        return _stage_result(spec, self._models[index](x)[0], (rule or self.rule).stage1_threshold)

    def classify(
        self,
        rgb: np.ndarray,
        all_stages: bool = False,
        profile: bool = True,
        rule: DecisionRule | None = None,
    ) -> CascadeResult:
        """Classify one RGB image (H, W, 3, uint8) under ``rule`` (None: the cascade's own,
        ``self.rule``) and, unless ``profile`` is False, the site profile in use."""
        rule = rule or self.rule  # one rule and one profile for the whole frame
        head = self.profile if profile else None
        if self._fused is not None:
            outs = self._fused(resize_for_model(rgb, self.stage1.input_size))
            return self._from_fused(rule, head, outs, all_stages)
        s1 = self.run_stage(0, rgb, rule)
        if not (s1.label == "recyclable" or all_stages or head is not None):
            return decide(rule, s1, None)
        x = resize_for_model(rgb, self.stage2.input_size)
        outs = self._models[1](x)
        s2 = _stage_result(self.stage2, outs[0])
        return self._with_profile(
            rule, head, s1, s2, outs[1] if len(outs) > 1 else None, all_stages
        )

    def _from_fused(
        self,
        rule: DecisionRule,
        head: ProfileHead | None,
        outs: list[np.ndarray],
        all_stages: bool,
    ) -> CascadeResult:
        """One image's result from the fused model's outputs (stage 1, stage 2, embedding)."""
        s1 = _stage_result(self.stage1, outs[0], rule.stage1_threshold)
        s2 = _stage_result(self.stage2, outs[1])
        return self._with_profile(
            rule, head, s1, s2, outs[2] if len(outs) > 2 else None, all_stages
        )

    def _with_profile(
        self,
        rule: DecisionRule,
        head: ProfileHead | None,
        s1: StageResult,
        s2: StageResult,
        embedding: np.ndarray | None,
        all_stages: bool,
    ) -> CascadeResult:
        wanted = s1.label == "recyclable" or all_stages
        if embedding is not None:
            embedding = np.asarray(embedding, np.float32).reshape(-1)
        base = decide(rule, s1, s2 if wanted else None, embedding)
        if head is None or embedding is None:
            return base
        return head.apply(base, s1, s2, embedding, rule)

    def classify_many(
        self,
        images: list[np.ndarray],
        all_stages: bool = False,
        profile: bool = True,
        rule: DecisionRule | None = None,
    ) -> list[CascadeResult]:
        """Classify several RGB images (a frame's regions) in one batched model call where
        the fused model is used; otherwise one after another. Same results as ``classify``."""
        rule = rule or self.rule
        if self._fused is None or len(images) < 2:
            return [self.classify(im, all_stages, profile, rule) for im in images]
        head = self.profile if profile else None
        batch = np.stack([resize_for_model(im, self.stage1.input_size) for im in images])
        outs = self._fused_batches(batch)
        return [
            self._from_fused(rule, head, [o[i] for o in outs], all_stages)
            for i in range(len(images))
        ]


def decide(
    rule: DecisionRule,
    s1: StageResult,
    s2: StageResult | None,
    embedding: np.ndarray | None = None,
) -> CascadeResult:
    """The final label from both stages' results (and the embedding's length, where the
    models give one: a flat float32 vector, kept in the result) under ``rule`` (see
    ``DecisionRule``)."""
    norm = None if embedding is None else float(np.linalg.norm(embedding))
    if s1.label == "recyclable":
        assert s2 is not None, "stage 2 runs whenever stage 1 says recyclable"
        label, score = s2.label, min(s1.score, s2.score)
    else:
        label, score = s1.label, s1.score
    if score < rule.min_confidence or (norm is not None and norm < rule.min_embedding_norm):
        label = UNCERTAIN
    return CascadeResult(label, score, s1, s2, base_bin(label), embedding=embedding)
