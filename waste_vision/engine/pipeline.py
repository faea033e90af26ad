"""One pipeline for the window and the headless commands: source -> cascade -> sinks.

``FrameClassifier`` turns a captured ``Frame`` into a ``FrameResult`` (regions tracked and
clamped, each crop through the cascade, rates and latency measured). ``Pipeline`` pulls
frames from a source, classifies them, draws the overlay on a copy and hands both to its
sinks (recorder, log, window). ``annotate`` runs it in the calling thread over every frame
of a file; the window runs it in a worker thread over the freshest frames of a live source,
so neither capture nor display ever waits for inference.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from waste_vision.engine.annotators import DEFAULT_STYLE, Annotator, OverlayStyle
from waste_vision.engine.explain import OcclusionExplainer
from waste_vision.engine.frames import (
    Box,
    Frame,
    FrameResult,
    Mode,
    RegionKind,
    RegionResult,
    boxes_overlap,
)
from waste_vision.engine.items import ItemTracker
from waste_vision.engine.regions import RegionSet, Zones, ZoneSpec, crop
from waste_vision.engine.reuse import ResultCache
from waste_vision.engine.scene import EmptyScene
from waste_vision.engine.tally import Tally
from waste_vision.labels import FIND_MODES, UNCERTAIN
from waste_vision.model.cascade import Cascade, DecisionRule


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


MODES = FIND_MODES  # what is classified when no region is drawn


def as_mode(value: str) -> Mode:
    """``"items"`` or ``"frame"`` (or the ``Mode``) -> the ``Mode``; ValueError otherwise."""
    if value not in MODES:
        raise ValueError(f"mode must be one of {tuple(map(str, MODES))}, not {value!r}")
    return Mode(value)


@dataclass(frozen=True)
class PipelineConfig:
    """Everything about how a frame is classified and drawn that the window may change
    while a source plays. Immutable: the window builds a new one (``dataclasses.replace``)
    and hands it over in one assignment (``FrameClassifier.config``, or ``reconfigure``),
    and the pipeline takes it once at the start of each frame, so a frame never mixes an
    old setting with a new one.

    ``mode``: what is classified when no zone is drawn (``items`` or ``frame``); ``reuse``:
    a region whose content has not changed keeps its last result; ``explain``: heat maps of
    where the model looked; ``all_stages``: run stage 2 even where stage 1 says organic;
    ``thresholds``: the decision rule (the window's sliders; None: the cascade's own,
    ``Cascade.rule``); ``zones``: the regions drawn by hand, in the order drawn (the pipeline
    thread keeps each one's tracking state while its spec is unchanged: ``RegionSet.sync``);
    ``overlay``: how the overlay is drawn (type size, figures shown); ``item_epoch``: bumped
    to ask that the item being counted from the verdicts ends (``Tally.break_item``), which
    the pipeline thread does when it takes the new configuration, as it does by itself when
    the zones or the mode change (a count never spans two setups).
    """

    mode: Mode = Mode.FRAME
    reuse: bool = True
    explain: bool = False
    all_stages: bool = False
    thresholds: DecisionRule | None = None
    zones: Zones = ()
    overlay: OverlayStyle = DEFAULT_STYLE
    item_epoch: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", as_mode(self.mode))  # "items" -> Mode.ITEMS
        zones = tuple(self.zones)  # a list given is frozen too
        if not all(isinstance(z, ZoneSpec) for z in zones):
            raise TypeError(f"zones must be ZoneSpec objects, not {zones!r}")
        object.__setattr__(self, "zones", zones)


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

    The settings live in one ``PipelineConfig`` (``config``), read once per frame; ``mode``,
    ``explain`` and ``all_stages`` are thin views of it whose setters replace it whole. The
    zones it names are followed in ``regions`` (this thread's: their tracking state).
    """

    def __init__(
        self,
        cascade: Cascade,
        *,
        all_stages: bool = False,
        mode: str = Mode.FRAME,
        scene: EmptyScene | None = None,
        tracker: ItemTracker | None = None,
        reuse: bool = True,
        config: PipelineConfig | None = None,
    ):
        self.cascade = cascade
        self.scene = scene or EmptyScene()
        self.tracker = tracker or ItemTracker()
        self.config = config or PipelineConfig(as_mode(mode), reuse, False, all_stages)
        # the zones' tracking state (pipeline thread), in line with each frame's config
        self.regions = RegionSet(self.config.zones)
        self.cache = ResultCache()  # used while ``config.reuse`` is on
        # the one count of everything counted, in any mode; its verdict rule counts in the
        # frame and zone modes, and the items the tracker counts are added to it
        self.tally = Tally([])  # this thread's only (no lock): see ``_take``
        self._last_config: PipelineConfig | None = None  # the previous frame's
        self.explainer = OcclusionExplainer(cascade)
        self._capture_rate = RateMeter()
        self._classify_rate = RateMeter()
        self._learning_since: float | None = None  # when the empty scene began to be learnt
        self._was_learning = False

    def reconfigure(self, **changes: Any) -> PipelineConfig:
        """Replace the configuration in one assignment (safe from any thread: the pipeline
        takes the whole object once per frame); returns the new one."""
        config = dataclasses.replace(self.config, **changes)
        self.config = config
        return config

    @property
    def mode(self) -> Mode:
        return self.config.mode

    @mode.setter
    def mode(self, value: str) -> None:
        self.reconfigure(mode=value)

    @property
    def explain(self) -> bool:
        """Heat maps of where the model looked (explain.py)."""
        return self.config.explain

    @explain.setter
    def explain(self, on: bool) -> None:
        self.reconfigure(explain=bool(on))

    @property
    def all_stages(self) -> bool:
        return self.config.all_stages

    @all_stages.setter
    def all_stages(self, on: bool) -> None:
        self.reconfigure(all_stages=bool(on))

    @property
    def reuse(self) -> ResultCache | None:
        """The kept results while reuse is on (``config.reuse``), else None."""
        return self.cache if self.config.reuse else None

    @property
    def verdicts(self) -> Tally:
        """The counting rule without items (frame and zone modes): ``tally``."""
        return self.tally

    @property
    def counts(self) -> Counter[str]:
        """Everything counted, in any mode (``tally.counts``)."""
        return self.tally.counts

    def summary(self) -> dict:
        """What was counted: ``{"tally": {label: n}, "items": [...], "items_total": n}``
        (items: the last ``items.KEEP_ITEMS`` found ones; the total counts them all)."""
        return {
            "tally": dict(sorted(self.counts.items())),
            "items": [i.as_dict() for i in self.tracker.items()],
            "items_total": self.tracker.counted_total,
        }

    def __call__(self, frame: Frame, config: PipelineConfig | None = None) -> FrameResult:
        """``frame`` classified under ``config`` (None: ``self.config`` as it is now)."""
        cfg = config or self.config  # this frame's settings, whatever changes meanwhile
        self._take(cfg)
        zones = self.regions
        image = frame.image
        learning, ids = False, []
        slots: list[int] | None = None  # zones: which drawn zone each box is
        # a file's own clock, so a clip counts the same at any processing speed
        t = frame.position_s if frame.position_s is not None else frame.timestamp
        mode: Mode
        kind: RegionKind
        if frame.still:  # a photo: classified whole (or by zone), no empty scene to learn
            kind = RegionKind.ZONE if zones.regions else RegionKind.FRAME
            mode, boxes = (Mode.ZONES if zones.regions else Mode.FRAME), zones.boxes(image)
        elif zones.regions:
            found = self._find(image, t)
            learning = found is None
            mode, kind = Mode.ZONES, RegionKind.ZONE
            drawn = zones.boxes(image, found if zones.tracking else None)
            # only zones where something differs from the empty table (nothing while learning);
            # each keeps its own slot, so its kept result stays its own (reuse)
            slots = [
                i for i, b in enumerate(drawn) if any(boxes_overlap(b, f) for f in found or [])
            ]
            boxes = [drawn[i] for i in slots]
        elif cfg.mode == Mode.ITEMS:
            mode, kind = Mode.ITEMS, RegionKind.ITEM
            found = self._find(image, t)
            learning = found is None
            boxes = sorted(found or [], key=lambda b: (b[0], b[1]))
        else:
            mode, kind, boxes = Mode.FRAME, RegionKind.FRAME, zones.boxes(image)
        crops = [crop(image, b) for b in boxes]
        if mode == Mode.ITEMS:
            ids = self.tracker.match(t, boxes)  # before classifying: results kept per item
        keys: list[Hashable] = [
            (kind, ids[i] if ids else slots[i] if slots is not None else i)
            for i in range(len(boxes))
        ]
        if cfg.reuse and not frame.still:
            results = self.cache.classify(
                self.cascade, t, keys, crops, cfg.all_stages, cfg.thresholds
            )
        else:
            results = self.cascade.classify_many(crops, cfg.all_stages, rule=cfg.thresholds)
        largest = max(
            zip(boxes, results, strict=False), key=lambda br: br[0][2] * br[0][3], default=None
        )
        at: list[int] = []  # which box each counted label is (the events keep its region)
        healed: list[RegionResult] = []
        if mode == Mode.ITEMS:
            was = {item.id for item in self.tracker.present if item.counted}
            counted = self.tracker.count(t, [r.label for r in results])
            if counted:
                new = {item.id for item in self.tracker.present if item.counted} - was
                at = [i for i, item_id in enumerate(ids) if item_id in new]
            healed = self._count_healed(t, cfg)
            counted += [r.result.label for r in healed]
            self.tally.add(counted)
        elif frame.still:  # each photo is one item: its largest region's label, if sure
            counted = []
            if largest is not None and largest[1].label != UNCERTAIN:
                counted = [largest[1].label]
                at = [boxes.index(largest[0])]
            self.tally.add(counted)
        else:
            said = self.tally.update(largest[1].label if largest else None, t)
            counted = [said] if said else []
            at = [boxes.index(largest[0])] if said and largest is not None else []
        heat = {}
        if cfg.explain:
            self.explainer.update(
                list(zip(keys, crops, results, strict=False)), rule=cfg.thresholds
            )
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
            counted_regions=tuple([regions[i] for i in at] + healed),
        )

    def _take(self, cfg: PipelineConfig) -> None:
        """This frame's configuration, on the pipeline thread: the zones brought in line
        (unchanged ones keep their tracking), and the item followed by the verdict rule ended
        where another one was asked for (``item_epoch``) or the zones or the mode changed, so
        the tally is only ever touched from this thread."""
        last, self._last_config = self._last_config, cfg
        self.regions.sync(cfg.zones)
        if last is not None and (
            cfg.item_epoch != last.item_epoch or cfg.zones != last.zones or cfg.mode != last.mode
        ):
            self.tally.break_item()

    def _find(self, image: np.ndarray, t: float) -> list[Box] | None:
        """The scene's items (None while learning), noting when learning began."""
        found = self.scene.find(image)
        if found is None and not self._was_learning:
            self._learning_since = t
        self._was_learning = found is None
        return found

    def _count_healed(self, t: float, cfg: PipelineConfig) -> list[RegionResult]:
        """Items learnt into the empty scene that have now left (``EmptyScene.healed``):
        each is counted once, from what the learnt view showed there, unless an item counted
        since the learning began was seen at that spot (E pressed over counted items, or the
        item counted while it slid away); returns each one's region."""
        counted = []
        view = getattr(self.scene, "learnt_view", None)  # (stand-in scenes have neither)
        for box in getattr(self.scene, "healed", ()):
            since = self._learning_since if self._learning_since is not None else t
            since -= self.tracker.gone_s  # items still present when the learning began
            if view is None or self.tracker.counted_near(box, since):
                continue
            result = self.cascade.classify_many(
                [crop(view, box)], cfg.all_stages, rule=cfg.thresholds
            )[0]
            if result.label != UNCERTAIN:
                self.tracker.add_counted(t, box, result.label)
                item_id = self.tracker.finished[-1].id  # the one add_counted made
                counted.append(RegionResult(box, result, RegionKind.ITEM, item_id))
        return counted


class Sink(Protocol):
    """Anything that takes classified frames: a recorder, a log, the window's bridge."""

    def write(self, result: FrameResult, annotated: np.ndarray) -> None: ...

    def close(self) -> object: ...  # (what it returns, e.g. the file written, is its own)


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
        cfg = self.classifier.config  # once: the window may replace it meanwhile
        result = self.classifier(frame, cfg)
        annotated = frame.image.copy()
        overlay = self.overlay  # (fixed: what can change about drawing is cfg.overlay)
        if overlay is not None:
            annotated = overlay.annotate(annotated, result, cfg.overlay)
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
