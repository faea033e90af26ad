"""The LiteRT backend: runs the shipped ``.tflite`` models on the CPU (the default path;
the bundle ships only this one)."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from waste_vision.errors import UserError

# LiteRT writes this line from C++ to the process's stderr the first time it loads a model, so
# every command and every kiosk log began with it.
XNNPACK_NOTICE = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
_notice_lock = threading.Lock()
_notice_seen = False


@contextlib.contextmanager
def _without_xnnpack_notice() -> Iterator[None]:
    """Capture native stderr (fd 2) while the first model loads and write it back without
    ``XNNPACK_NOTICE``: nothing else written meanwhile, by LiteRT or another thread, is lost.
    One load at a time, so two redirections never interleave. Where there is no stderr or no
    writable temporary folder, the load goes on uncaptured (the notice is only a nuisance)."""
    global _notice_seen
    with _notice_lock, contextlib.ExitStack() as stack:
        try:
            captured = None if _notice_seen else stack.enter_context(tempfile.TemporaryFile())
            saved = None if captured is None else os.dup(2)
        except OSError:
            captured = saved = None
        if captured is None or saved is None:
            yield
            return
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().splitlines(keepends=True)
            kept = [line for line in lines if line.strip() != XNNPACK_NOTICE]
            if kept:
                os.write(2, b"".join(kept))
            _notice_seen = len(kept) < len(lines)  # it was False to get here (under the lock)


class LiteRTModel:
    """One ``.tflite`` model; outputs are returned in the order of their tensor names."""

    def __init__(self, path: Path, threads: int):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # pragma: no cover - depends on the installation
            raise UserError(
                "the LiteRT runtime (ai-edge-litert) is not installed; "
                "use --backend keras or install ai-edge-litert"
            ) from None
        try:
            with _without_xnnpack_notice():
                self._interp = Interpreter(model_path=str(path), num_threads=threads)
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise UserError(
                f"{path} is not a valid .tflite model "
                f"({str(exc).splitlines()[0]}); restore the models folder"
            ) from None
        self._input = self._interp.get_input_details()[0]["index"]
        outputs = sorted(self._interp.get_output_details(), key=lambda d: d["name"])
        self._outputs = [d["index"] for d in outputs]
        self.output_sizes = [int(np.prod(d["shape"][1:])) for d in outputs]
        # an interpreter is not thread-safe: the pipeline and the window's Teach worker share it
        self._lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        with self._lock:
            self._interp.set_tensor(self._input, x[None])
            self._interp.invoke()
            return [self._interp.get_tensor(i)[0].copy() for i in self._outputs]


class LiteRTBatches:
    """One ``.tflite`` run on several images in one call (the regions of a frame).

    Resizing an interpreter's input re-plans it (milliseconds), so each batch size gets
    its own interpreter, made the first time that many regions appear.
    """

    def __init__(self, path: Path, threads: int):
        self._path, self._threads = path, threads
        self._by_size: dict[int, LiteRTModel] = {}
        self._lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        with self._lock:
            return self._call(batch)

    def _call(self, batch: np.ndarray) -> list[np.ndarray]:
        n = len(batch)
        model = self._by_size.get(n)
        if model is None:
            model = LiteRTModel(self._path, self._threads)
            interp = model._interp
            interp.resize_tensor_input(model._input, [n, *batch.shape[1:]])
            interp.allocate_tensors()
            self._by_size[n] = model
        interp = model._interp
        interp.set_tensor(model._input, np.ascontiguousarray(batch, np.float32))
        interp.invoke()
        return [interp.get_tensor(i).copy() for i in model._outputs]
