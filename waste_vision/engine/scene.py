"""Finding items: what differs from the learned empty scene becomes one box per item.

``EmptyScene`` learns what the camera sees with nothing on it — the first ``learn_frames``
frames after start or after ``relearn()`` — on a small, blurred copy of each frame (320 px
wide: ~1 ms a frame at 720p). Each later frame is compared with it:

1. a per-channel gain, measured on the pixels that were background in the previous frame,
   cancels light drift (a cloud, auto-exposure) before comparing;
2. pixels whose colour differs by more than ``threshold`` (raised above the camera's own
   noise, measured while learning) are "changed"; an opening removes speckle, a closing
   joins the parts of one item (a label and its bottle), a connected-components pass turns
   each blob into a box; small blobs are dropped, boxes grown by a margin, and boxes that
   then overlap are merged (two blobs, one item); at most ``max_items`` largest are kept;
3. the empty scene adapts slowly (``adapt_rate`` per frame) **only where nothing was
   found**, so light drift and noise are followed but an item left on the table is never
   learned into the background: it stays an item until it is taken away;
4. ghosts heal: an empty scene learnt with an item in view (a video that starts with one,
   or E pressed with items on the table) holds that item, so once it is taken away the bare
   table there differs from what was learnt. Each changed blob is therefore checked: the
   inside of the blob is compared with the ring of table just around it, once in the
   current frame and once in the learnt scene. An item differs from its surroundings now
   and matched them when learnt; a ghost is the other way round (the bare table now matches
   the table around it, the learnt scene held something else). A blob that reads as a ghost
   for ``heal_frames`` frames in a row is relearnt as table at once (before the counting
   rule's 0.5 s could count it), and if what was learnt there came from the learning frames
   (not from an earlier heal) its box is reported in ``healed``, so the item that was in
   view from the start can be counted once from the learnt view (``learnt_view``).
   An item lying still is never absorbed: it keeps differing from the table around it.

Why not OpenCV's MOG2/KNN subtractors: they learn everything that stays still long enough
into the background (an item left for a minute disappears) unless learning is stopped,
and then they no longer follow the light. The parameters were chosen by measurement on the
clip with truth (``tools/make_demo_clip.py``, ``benchmarks/scene_eval.py``; figures in the README).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from waste_vision.engine.frames import Box, boxes_overlap

GAIN_EVERY = 3  # frames between measurements of the light's gain


@dataclass(frozen=True)
class SceneSettings:
    work_width: int = 320  # pixels: frames are compared at this width
    learn_frames: int = 15  # frames averaged into the empty scene (0.5 s at 30 FPS)
    threshold: float = 30.0  # colour distance (0-255 per channel, max of channels) that is change
    noise_factor: float = 5.0  # the threshold is at least this many times the learnt noise
    adapt_rate: float = 0.03  # per frame, on background pixels only
    min_area: float = 0.004  # a blob smaller than this fraction of the frame is noise
    join: float = 0.035  # fraction of the width: gaps narrower than this join one item
    margin: float = 0.06  # each box grows by this fraction of its side on every edge
    max_items: int = 5
    scene_change: float = 0.85  # more of the frame than this changed at once: relearn
    ghost_ratio: float = 0.5  # ghost: the blob differs from its ring now < this x when learnt
    heal_frames: int = 3  # consecutive frames a blob must read as a ghost before it heals


def _merge(boxes: list[Box]) -> list[Box]:
    """Union boxes that overlap until none do."""
    boxes = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                if boxes_overlap(boxes[i], boxes[j]):
                    (ax, ay, aw, ah), (bx, by, bw, bh) = boxes[i], boxes[j]
                    x0, y0 = min(ax, bx), min(ay, by)
                    x1, y1 = max(ax + aw, bx + bw), max(ay + ah, by + bh)
                    boxes[i] = (x0, y0, x1 - x0, y1 - y0)
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


def _padded(rect: Box, pad: int, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``rect`` (x, y, w, h) grown by ``pad`` on every side, as corners x0, y0, x1, y1
    (exclusive) inside an image of ``shape``."""
    x, y, w, h = rect
    return max(0, x - pad), max(0, y - pad), min(shape[1], x + w + pad), min(shape[0], y + h + pad)


class EmptyScene:
    """The empty scene's model and the item finder built on it (one per video source)."""

    def __init__(self, settings: SceneSettings | None = None):
        self.settings = settings or SceneSettings()
        self.background: np.ndarray | None = None
        self.noise = 0.0
        self._sum: np.ndarray | None = None
        self._previous: np.ndarray | None = None
        self._diffs: list[float] = []
        self._learnt = 0
        self._background_mask: np.ndarray | None = None
        self._relearn_asked = False
        self._gain: np.ndarray | None = None  # the light's gain, measured every few frames
        self._frames = 0
        self._from_learning: np.ndarray | None = None  # working-size pixels not healed since
        self._ghost_run: np.ndarray | None = None  # per pixel: frames in a row read as ghost
        self.learnt_view: np.ndarray | None = None  # the full frame that ended the learning
        self.healed: list[Box] = []  # this frame's healed spots whose learnt content is unseen

    @property
    def learning(self) -> bool:
        return self.background is None or self._relearn_asked

    def relearn(self) -> None:
        """The next ``learn_frames`` frames become the empty scene (the view must be empty).

        Safe to call from another thread (the window's button): it only raises a flag that
        the next ``find`` acts on, in the thread that runs the pipeline.
        """
        self._relearn_asked = True

    def learn_from(self, image: np.ndarray) -> None:
        """Take ``image`` (a photo of the empty view, the frames' size) as the empty scene."""
        self._reset()
        for _ in range(self.settings.learn_frames):
            self._learn(self._small(image))
        self.learnt_view = image.copy()

    def _reset(self) -> None:
        self._relearn_asked = False
        self._gain = None
        self.background = None
        self._sum = None
        self._previous = None
        self._diffs = []
        self._learnt = 0
        self._background_mask = None
        self._from_learning = None
        self._ghost_run = None
        self.learnt_view = None
        self.healed = []

    def _small(self, image: np.ndarray) -> np.ndarray:
        """The frame at about ``work_width``, blurred: halvings by ``pyrDown`` (a Gaussian
        blur and a decimation in one pass, ~3x cheaper than INTER_AREA plus a blur), then one
        resize for the rest."""
        h, w = image.shape[:2]
        width = min(self.settings.work_width, w)
        small = image
        while small.shape[1] >= 2 * width:
            small = cv2.pyrDown(small)
        if small.shape[1] != width:
            small = cv2.resize(
                small, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA
            )
        # a last blur at the working size, as camera noise is still a pixel wide here
        return cv2.GaussianBlur(small, (5, 5), 0).astype(np.float32)

    def _learn(self, small: np.ndarray) -> None:
        if self._sum is None or self._sum.shape != small.shape:
            self._sum = np.zeros_like(small)
            self._learnt = 0
        if self._previous is not None and self._previous.shape == small.shape:
            self._diffs.append(float(np.median(np.abs(small - self._previous))))
        self._previous = small
        self._sum += small
        self._learnt += 1
        if self._learnt >= self.settings.learn_frames:
            self.background = self._sum / self._learnt
            # median frame-to-frame difference ~ sqrt(2) x noise x 0.67 for Gaussian noise
            self.noise = float(np.median(self._diffs)) * 1.05 if self._diffs else 0.0
            self._from_learning = np.ones(small.shape[:2], bool)
            self._ghost_run = np.zeros(small.shape[:2], np.uint8)
            self._sum, self._previous, self._diffs = None, None, []

    def changed(self, small: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mask (uint8 0/255) of pixels that differ from the empty scene, and the frame
        with the light drift taken out."""
        bg = self.background
        if bg is None:
            raise RuntimeError("changed() needs the empty scene learnt first")
        keep = self._background_mask
        if (
            keep is None
            or keep.shape != small.shape[:2]
            or np.count_nonzero(keep) < 0.1 * keep.size
        ):
            keep = np.ones(small.shape[:2], bool)
        # the light's gain from every other background pixel: a median is robust to the
        # edges of items, and a quarter of the pixels gives the same value 4x faster
        self._frames += 1
        if self._gain is None or self._frames % GAIN_EVERY == 0:  # light drifts slowly
            # (one channel at a time: contiguous planes take the median ~1.5x faster)
            keep = keep[::2, ::2]
            planes = zip(
                cv2.split(np.ascontiguousarray(bg[::2, ::2])),
                cv2.split(np.ascontiguousarray(small[::2, ::2])),
                strict=False,
            )
            gain = np.array(
                [(np.median(b[keep]) + 1.0) / (np.median(f[keep]) + 1.0) for b, f in planes]
            )
            self._gain = np.clip(gain, 0.5, 2.0).astype(np.float32)
        # per-channel gain as an OpenCV scalar: 3-4x faster than numpy's broadcast over 3
        scalar = (*(float(g) for g in self._gain), 0.0)
        adjusted = cv2.multiply(small, scalar)  # type: ignore[call-overload]  # (stubs: no scalars)
        d = cv2.absdiff(adjusted, bg)
        diff = np.maximum(np.maximum(d[..., 0], d[..., 1]), d[..., 2])  # 5x .max(axis=2)
        threshold = max(self.settings.threshold, self.settings.noise_factor * self.noise)
        mask = (diff > threshold).astype(np.uint8) * 255
        return mask, adjusted

    def find(self, image: np.ndarray) -> list[Box] | None:
        """Boxes (frame pixels) of the items in ``image``; ``None`` while still learning."""
        s = self.settings
        small = self._small(image)
        self.healed = []
        if self._relearn_asked or (
            self.background is not None and self.background.shape != small.shape
        ):
            self._reset()  # asked for, or the source's frame size changed
        if self.background is None:
            self._learn(small)
            if self.background is not None:
                self.learnt_view = image  # frames are never modified after capture
            return None
        mask, adjusted = self.changed(small)
        h, w = mask.shape
        if np.count_nonzero(mask) > s.scene_change * mask.size:
            self._reset()  # the whole view changed (camera moved, lights switched)
            self._learn(small)
            return None
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        k = max(3, int(s.join * w) | 1)
        mask = cv2.morphologyEx(
            mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        )
        _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        scale_x, scale_y = image.shape[1] / w, image.shape[0] / h
        boxes = []
        ghosts = np.zeros((h, w), bool)
        assert self._ghost_run is not None  # set when the learning ended
        for i, (x, y, bw, bh, area) in enumerate(stats[1:], start=1):
            if area < s.min_area * w * h:
                continue
            mx, my = s.margin * bw, s.margin * bh
            x0, y0 = max(0.0, x - mx), max(0.0, y - my)
            x1, y1 = min(float(w), x + bw + mx), min(float(h), y + bh + my)
            box = (
                int(x0 * scale_x),
                int(y0 * scale_y),
                int((x1 - x0) * scale_x),
                int((y1 - y0) * scale_y),
            )
            if self._ghost(labels, i, (x, y, bw, bh), mask, adjusted, ghosts):
                spot = ghosts[y : y + bh, x : x + bw] & (labels[y : y + bh, x : x + bw] == i)
                if self._ghost_run[y : y + bh, x : x + bw][spot].mean() >= s.heal_frames:
                    self._heal(labels, i, (x, y, bw, bh), adjusted, mask, box)
                    continue
            boxes.append(box)
        self._ghost_run[~ghosts] = 0
        boxes = sorted(_merge(boxes), key=lambda b: -b[2] * b[3])[: s.max_items]
        # adapt where nothing was found (with a safety ring around each item)
        background = cv2.bitwise_not(cv2.dilate(mask, np.ones((5, 5), np.uint8)))
        # background += rate * (adjusted - background) where the mask is set, in one pass
        cv2.accumulateWeighted(adjusted, self.background, s.adapt_rate, background)
        self._background_mask = background > 0
        return boxes

    def _ghost(
        self,
        labels: np.ndarray,
        i: int,
        rect: tuple[int, int, int, int],
        mask: np.ndarray,
        adjusted: np.ndarray,
        ghosts: np.ndarray,
    ) -> bool:
        """Does blob ``i`` look like the table around it now, where the learnt scene did not?
        Marks it in ``ghosts`` and counts its run in ``_ghost_run`` if so."""
        assert self.background is not None and self._ghost_run is not None  # learnt
        pad = 4
        x0, y0, x1, y1 = _padded(rect, pad, labels.shape)
        inside = labels[y0:y1, x0:x1] == i
        inside_u8 = inside.view(np.uint8)
        ring = cv2.dilate(inside_u8, np.ones((2 * pad + 1, 2 * pad + 1), np.uint8))
        ring = cv2.bitwise_and(ring, cv2.bitwise_not(mask[y0:y1, x0:x1]))  # table only
        if cv2.countNonZero(ring) < 20:
            return False  # nothing around it to compare with (it fills the view)

        def spread(image: np.ndarray) -> float:
            """Mean colour distance (max of channels) of the blob from the ring's mean."""
            d = cv2.absdiff(image, cv2.mean(image, ring))  # type: ignore[call-overload]
            d = np.maximum(np.maximum(d[..., 0], d[..., 1]), d[..., 2])
            return cv2.mean(d, inside_u8)[0]

        u_now = spread(adjusted[y0:y1, x0:x1])
        if u_now >= self.settings.ghost_ratio * spread(self.background[y0:y1, x0:x1]):
            return False
        ghosts[y0:y1, x0:x1] |= inside
        run = self._ghost_run[y0:y1, x0:x1]
        run[inside] = np.minimum(run[inside], 254) + 1
        return True

    def _heal(
        self,
        labels: np.ndarray,
        i: int,
        rect: tuple[int, int, int, int],
        adjusted: np.ndarray,
        mask: np.ndarray,
        box: Box,
    ) -> None:
        """Relearn ghost blob ``i`` (and its safety ring) as table; report it in ``healed``
        when what was learnt there came from the learning frames."""
        assert (
            self.background is not None
            and self._from_learning is not None
            and self._ghost_run is not None
        )  # learnt
        pad = 3
        x0, y0, x1, y1 = _padded(rect, pad, labels.shape)
        spot = (
            cv2.dilate(
                (labels[y0:y1, x0:x1] == i).astype(np.uint8),
                np.ones((2 * pad + 1, 2 * pad + 1), np.uint8),
            )
            > 0
        )
        self.background[y0:y1, x0:x1][spot] = adjusted[y0:y1, x0:x1][spot]
        learnt = self._from_learning[y0:y1, x0:x1]
        if learnt[spot].mean() > 0.5:
            self.healed.append(box)
        learnt[spot] = False
        mask[y0:y1, x0:x1][spot] = 0  # not an item: the background adapts there from now on
        self._ghost_run[y0:y1, x0:x1][spot] = 0
