"""The two-stage cascade at run time: stage 1 organic vs recyclable, stage 2 the material.

Stage 2 runs only when stage 1 says recyclable (or always, with ``all_stages``). Two
interchangeable backends run the shipped models: LiteRT (``.tflite``, fast on a CPU) and
Keras (``.keras``, used when a GPU is visible or when asked for). Both take RGB uint8/float
frames of any size; resizing to each stage's input happens here.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from waste_vision.errors import UserError
from waste_vision.images import resize_for_model
from waste_vision.manifest import Manifest, StageSpec, load_manifest

UNCERTAIN = "uncertain"
DEFAULT_UNCERTAIN_BELOW = 0.5


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
    score: float  # probability of the final label before the "uncertain" cut
    stage1: StageResult
    stage2: StageResult | None


class _LiteRTModel:
    """One ``.tflite`` model; outputs are returned in the order of their tensor names."""

    def __init__(self, path: Path, threads: int):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # pragma: no cover - depends on the installation
            raise UserError("the LiteRT runtime (ai-edge-litert) is not installed; "
                            "use --backend keras or install ai-edge-litert") from None
        try:
            self._interp = Interpreter(model_path=str(path), num_threads=threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise UserError(f"{path} is not a valid .tflite model "
                            f"({str(exc).splitlines()[0]}); restore the models folder") from None
        self._input = self._interp.get_input_details()[0]["index"]
        outputs = sorted(self._interp.get_output_details(), key=lambda d: d["name"])
        self._outputs = [d["index"] for d in outputs]
        self.output_sizes = [int(np.prod(d["shape"][1:])) for d in outputs]

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        self._interp.set_tensor(self._input, x[None])
        self._interp.invoke()
        return [self._interp.get_tensor(i)[0].copy() for i in self._outputs]


class _KerasModel:
    def __init__(self, path: Path):
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        try:
            import keras
        except ImportError:
            raise UserError("--backend keras needs TensorFlow, which is not installed; "
                            "install it (pip install tensorflow, or from a checkout the gpu "
                            "extra: pip install -e '.[gpu]') or use --backend litert") from None
        try:
            self._model = keras.models.load_model(path, compile=False)
        except Exception as exc:  # keras raises many types for a bad file
            raise UserError(f"{path} is not a valid .keras model "
                            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                            "; restore the models folder") from None
        self.output_sizes = [int(np.prod(t.shape[1:])) for t in self._model.outputs]

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        out = self._model(x[None], training=False)
        out = out if isinstance(out, (list, tuple)) else [out]
        return [np.asarray(o)[0] for o in out]


def gpu_visible() -> bool:
    """A GPU TensorFlow can use. Importing TensorFlow costs seconds and hundreds of MB, so
    it is only asked when the machine shows an NVIDIA device at all."""
    if not (Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi")):
        return False
    try:
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    except Exception:
        return False


def choose_backend(requested: str) -> str:
    if requested == "auto":
        return "keras" if gpu_visible() else "litert"
    return requested


def _stage_result(spec: StageSpec, out: np.ndarray) -> StageResult:
    out = np.asarray(out, dtype=np.float64).reshape(-1)
    if out.size == 1:  # one sigmoid unit = P(second label)
        p = float(out[0])
        probs = (1.0 - p, p)
        index = 1 if p >= spec.threshold else 0
    else:
        probs = tuple(float(v) for v in out)
        index = int(np.argmax(out))
    return StageResult(spec.labels[index], probs[index], probs)


class Cascade:
    """Runs the manifest's stages on RGB frames; build once, call per frame."""

    def __init__(self, models_dir: Path, backend: str = "auto", threads: int = 2,
                 uncertain_below: float | None = None, fused: bool = True, int8: bool = False):
        self.manifest: Manifest = load_manifest(models_dir)
        # auto: LiteRT where the .keras models are absent (a wheel install ships none)
        self.backend = (choose_backend(backend) if backend != "auto" or all(
            s.keras for s in self.manifest.stages) else "litert")
        self.uncertain_below = (DEFAULT_UNCERTAIN_BELOW if uncertain_below is None
                                else uncertain_below)
        self.stage1, self.stage2 = self.manifest.stages
        self._models = [self._load(spec, threads) for spec in self.manifest.stages]
        for spec, model in zip(self.manifest.stages, self._models):
            expected = 1 if len(spec.labels) == 2 and model.output_sizes[0] == 1 else len(spec.labels)
            if model.output_sizes[0] != expected:
                raise UserError(
                    f"{self.manifest.root / 'cascade.json'}: stage {spec.name!r} lists "
                    f"{len(spec.labels)} labels but its model has {model.output_sizes[0]} "
                    "outputs; fix the labels or restore the model file")
        # One pass through the shared trunk gives both stages (LiteRT only).
        # int8 trades a little agreement with the float models for speed (--int8).
        self._fused = None
        fused_file = self.manifest.fused_int8_tflite if int8 else self.manifest.fused_tflite
        if int8 and (fused_file is None or self.backend != "litert"):
            raise UserError(
                f"--int8 needs the LiteRT backend and a 'fused_int8' model in "
                f"{self.manifest.root / 'cascade.json'}; make one with "
                "'python -m waste_vision.training.quantize' or leave out --int8")
        if (fused and self.backend == "litert" and fused_file
                and self.stage1.input_size == self.stage2.input_size):
            self._fused = _LiteRTModel(fused_file, threads)
            if self._fused.output_sizes != [m.output_sizes[0] for m in self._models]:
                raise UserError(f"{fused_file}: its outputs do not match the two stages; "
                                "restore the models folder")

    @property
    def uses_fused(self) -> bool:
        return self._fused is not None

    def _load(self, spec: StageSpec, threads: int):
        if self.backend == "litert":
            if spec.tflite is None:
                raise UserError(f"stage {spec.name!r} has no .tflite model; use --backend keras")
            return _LiteRTModel(spec.tflite, threads)
        if self.backend == "keras":
            if spec.keras is None:
                raise UserError(f"stage {spec.name!r} has no .keras model; use --backend litert")
            return _KerasModel(spec.keras)
        raise UserError(f"unknown backend {self.backend!r}; use auto, litert or keras")

    def run_stage(self, index: int, rgb: np.ndarray) -> StageResult:
        spec = self.manifest.stages[index]
        x = resize_for_model(rgb, spec.input_size)
        return _stage_result(spec, self._models[index](x)[0])

    def classify(self, rgb: np.ndarray, all_stages: bool = False) -> CascadeResult:
        """Classify one RGB image (H, W, 3, uint8)."""
        if self._fused is not None:
            out1, out2 = self._fused(resize_for_model(rgb, self.stage1.input_size))
            s1 = _stage_result(self.stage1, out1)
            stage2 = lambda: _stage_result(self.stage2, out2)  # noqa: E731
        else:
            s1 = self.run_stage(0, rgb)
            stage2 = lambda: self.run_stage(1, rgb)  # noqa: E731
        recyclable = s1.label == "recyclable"
        s2 = stage2() if (recyclable or all_stages) else None
        if recyclable:
            label, score = s2.label, s1.score * s2.score
        else:
            label, score = s1.label, s1.score
        if score < self.uncertain_below:
            label = UNCERTAIN
        return CascadeResult(label, score, s1, s2)
