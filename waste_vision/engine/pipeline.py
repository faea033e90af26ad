"""One pipeline for the window and the headless commands: source -> cascade -> sinks.

``FrameClassifier`` turns a captured ``Frame`` into a ``FrameResult`` (regions tracked and
clamped, each crop through the cascade, rates and latency measured). ``Pipeline`` pulls
frames from a source, classifies them, draws the overlay on a copy and hands both to its
sinks (recorder, log, window). ``annotate`` runs it in the calling thread over every frame
of a file; the window runs it in a worker thread over the freshest frames of a live source,
so neither capture nor display ever waits for inference.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Protocol

import numpy as np

from waste_vision.cascade import UNCERTAIN, Cascade
from waste_vision.engine.explain import OcclusionExplainer
from waste_vision.engine.frames import Box, Frame, FrameResult, RegionResult, boxes_overlap
from waste_vision.engine.items import ItemTracker
from waste_vision.engine.regions import RegionSet, crop
from waste_vision.engine.reuse import ResultCache
from waste_vision.engine.scene import EmptyScene
from waste_vision.engine.tally import Tally


class RateMeter:
    """Events per second over a sliding window of the last ``window`` events."""

    def __init__(self, window: int = 30):
        self._times: deque[float] = deque(maxlen=window)  # bounded: runs for months

    def tick(self, t: float | None = None) -> float:
        self._times.append(time.monotonic() if t is None else t)
        return self.rate

    @property
    def rate(self) -> float:
        if len(self._times) < 2 or self._times[-1] <= self._times[0]:
            return 0.0
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])


MODES = ("items", "frame")  # what is classified when no region is drawn


class FrameClassifier:
    """Frame -> FrameResult: what to classify, each crop through the cascade, items counted.

    What is classified: the regions drawn by hand when there are any (zones); else, in
    ``items`` mode, each item found against the learnt empty scene (``scene.EmptyScene``;
    nothing found -> verdict ``empty``), counted once by ``items.ItemTracker``; else, in
    ``frame`` mode, the whole frame (a camera that always sees one item close up). A region
    whose content has not changed keeps its last result (``reuse``: a ``reuse.ResultCache``;
    ``reuse=False`` classifies every crop of every frame); the rest of a frame's crops go
    through the cascade in one batched call.

    Every region decision starts from the empty scene: zones are classified only where
    something in them differs from the learnt empty table (a zone over bare table is not
    classified: the verdict is ``empty`` and nothing is counted), as found items are.
    Stills (``Frame.still``: a photo from an image folder) are the exception, in every mode:
    each photo is its own scene, so the whole photo (or each zone of it) is classified on
    its own, never reused from the photo before, and counted once as one item.
    """

    def __init__(
        self,
        cascade: Cascade,
        regions: RegionSet | None = None,
        all_stages: bool = False,
        mode: str = "frame",
        scene: EmptyScene | None = None,
        tracker: ItemTracker | None = None,
        reuse: bool = True,
    ):
        self.cascade = cascade
        self.regions = regions or RegionSet()
        self.all_stages = all_stages
        self.scene = scene or EmptyScene()
        self.tracker = tracker or ItemTracker()
        self.mode = mode
        self.reuse: ResultCache | None = ResultCache() if reuse else None
        self.verdicts = Tally([])  # the counting rule without items (frame and zone modes)
        self.counts: Counter[str] = Counter()  # everything counted, in any mode
        self.explain = False  # heat maps of where the model looked (explain.py)
        self.explainer = OcclusionExplainer(cascade)
        self._capture_rate = RateMeter()
        self._classify_rate = RateMeter()
        self._learning_since: float | None = None  # when the empty scene began to be learnt
        self._was_learning = False

    def summary(self) -> dict:
        """What was counted: ``{"tally": {label: n}, "items": [...], "items_total": n}``
        (items: the last ``items.KEEP_ITEMS`` found ones; the total counts them all)."""
        return {
            "tally": dict(sorted(self.counts.items())),
            "items": [i.as_dict() for i in self.tracker.items()],
            "items_total": self.tracker.counted_total,
        }

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {value!r}")
        self._mode = value

    def __call__(self, frame: Frame) -> FrameResult:
        image = frame.image
        learning, ids = False, []
        slots: list[int] | None = None  # zones: which drawn zone each box is
        # a file's own clock, so a clip counts the same at any processing speed
        t = frame.position_s if frame.position_s is not None else frame.timestamp
        if frame.still:  # a photo: classified whole (or by zone), no empty scene to learn
            kind = "zone" if self.regions.regions else "frame"
            mode, boxes = ("zones" if self.regions.regions else "frame"), self.regions.boxes(image)
        elif self.regions.regions:
            found = self._find(image, t)
            learning = found is None
            mode, kind = "zones", "zone"
            zones = self.regions.boxes(image, found if self.regions.tracking else None)
            # only zones where something differs from the empty table (nothing while learning);
            # each keeps its own slot, so its kept result stays its own (reuse)
            slots = [
                i for i, b in enumerate(zones) if any(boxes_overlap(b, f) for f in found or [])
            ]
            boxes = [zones[i] for i in slots]
        elif self._mode == "items":
            mode, kind = "items", "item"
            found = self._find(image, t)
            learning = found is None
            boxes = sorted(found or [], key=lambda b: (b[0], b[1]))
        else:
            mode, kind, boxes = "frame", "frame", self.regions.boxes(image)
        crops = [crop(image, b) for b in boxes]
        if mode == "items":
            ids = self.tracker.match(t, boxes)  # before classifying: results kept per item
        keys = [
            (kind, ids[i] if ids else slots[i] if slots is not None else i)
            for i in range(len(boxes))
        ]
        if self.reuse is not None and not frame.still:
            results = self.reuse.classify(self.cascade, t, keys, crops, self.all_stages)
        else:
            results = self.cascade.classify_many(crops, self.all_stages)
        counted: list[str] = []
        if mode == "items":
            counted = self.tracker.count(t, [r.label for r in results])
            counted += self._count_healed(t)
        elif frame.still:  # each photo is one item: its largest region's label, if sure
            largest = max(
                zip(boxes, results, strict=False), key=lambda br: br[0][2] * br[0][3], default=None
            )
            if largest is not None and largest[1].label != UNCERTAIN:
                counted = [largest[1].label]
        else:
            largest = max(
                zip(boxes, results, strict=False), key=lambda br: br[0][2] * br[0][3], default=None
            )
            said = self.verdicts.update(largest[1].label if largest else None, t)
            counted = [said] if said else []
        self.counts.update(counted)
        heat = {}
        if self.explain:
            self.explainer.update(list(zip(keys, crops, results, strict=False)))
            heat = self.explainer.maps
        regions = [
            RegionResult(b, r, kind, ids[i] if ids else None, heat.get(keys[i]))
            for i, (b, r) in enumerate(zip(boxes, results, strict=False))
        ]
        now = time.monotonic()
        return FrameResult(
            frame,
            regions,
            latency_ms=(now - frame.timestamp) * 1000,
            capture_fps=self._capture_rate.tick(frame.timestamp),
            classify_fps=self._classify_rate.tick(now),
            mode=mode,
            learning=learning,
            counted=tuple(counted),
        )

    def _find(self, image: np.ndarray, t: float) -> list[Box] | None:
        """The scene's items (None while learning), noting when learning began."""
        found = self.scene.find(image)
        if found is None and not self._was_learning:
            self._learning_since = t
        self._was_learning = found is None
        return found

    def _count_healed(self, t: float) -> list[str]:
        """Items learnt into the empty scene that have now left (``EmptyScene.healed``):
        each is counted once, from what the learnt view showed there, unless an item counted
        since the learning began was seen at that spot (E pressed over counted items, or the
        item counted while it slid away)."""
        counted = []
        view = getattr(self.scene, "learnt_view", None)  # (stand-in scenes have neither)
        for box in getattr(self.scene, "healed", ()):
            since = self._learning_since if self._learning_since is not None else t
            since -= self.tracker.gone_s  # items still present when the learning began
            if view is None or self.tracker.counted_near(box, since):
                continue
            result = self.cascade.classify_many([crop(view, box)], self.all_stages)[0]
            if result.label != UNCERTAIN:
                self.tracker.add_counted(t, box, result.label)
                counted.append(result.label)
        return counted


class Sink(Protocol):
    """Anything that takes classified frames: a recorder, a log, the window's bridge."""

    def write(self, result: FrameResult, annotated: np.ndarray) -> None: ...

    def close(self) -> None: ...


class Annotator(Protocol):
    def annotate(self, scene: np.ndarray, result: FrameResult) -> np.ndarray: ...


class FrameSource(Protocol):
    def read(self, timeout: float | None = None) -> Frame | None: ...

    @property
    def finished(self) -> bool: ...


class Pipeline:
    """Pull, classify, draw, hand on: the one loop behind ``annotate`` and the window."""

    def __init__(
        self,
        source: FrameSource,
        classifier: FrameClassifier,
        overlay: Annotator | None,
        sinks: list[Sink] | None = None,
    ):
        self.source = source
        self.classifier = classifier
        self.overlay = overlay
        self.sinks: list[Sink] = list(sinks or [])
        self.frames = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def step(self, frame: Frame) -> tuple[FrameResult, np.ndarray]:
        result = self.classifier(frame)
        annotated = frame.image.copy()
        if self.overlay is not None:
            annotated = self.overlay.annotate(annotated, result)
        for sink in list(self.sinks):
            sink.write(result, annotated)
        self.frames += 1
        return result, annotated

    def run(
        self, on_frame: Callable[[FrameResult], None] | None = None, poll_s: float = 0.1
    ) -> int:
        """Process frames until the source finishes or ``stop()``; returns frames processed."""
        while not self._stop.is_set():
            frame = self.source.read(timeout=poll_s)
            if frame is None:
                if self.source.finished:
                    break
                continue
            result, _ = self.step(frame)
            if on_frame is not None:
                on_frame(result)
        return self.frames

    def start(self, on_frame: Callable[[FrameResult], None] | None = None) -> Pipeline:
        """Run in a worker thread (the window's way); errors are kept in ``error``."""

        def work():
            try:
                self.run(on_frame)
            except BaseException as exc:  # reported by whoever owns the pipeline
                self.error = exc

        self._thread = threading.Thread(target=work, name="pipeline", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
