"""A simulated camera for source and window tests: its mode is flipped live by the test."""

from __future__ import annotations

import time

import cv2
import numpy as np

W, H = 160, 120


class FakeCamera:
    """A simulated camera; every capture opened on it obeys ``mode``, which tests flip live.

    ok: a new frame per read; fail: reads fail; unplugged: reads fail and reopening fails;
    freeze: the same picture again; stall: read() blocks until the mode changes.
    """

    def __init__(self, fps: float = 200.0, size: tuple[int, int] = (W, H)):
        self.fps = fps
        self.size = size
        self.mode = "ok"
        self.count = 0
        self.opens = 0
        self.good_opens = 0
        self.releases = 0

    def open(self) -> FakeCapture:
        self.opens += 1
        return FakeCapture(self)

    def next_frame(self) -> np.ndarray:
        w, h = self.size
        bgr = np.zeros((h, w, 3), np.uint8)
        bgr[..., 0] = 255  # blue, to check the BGR -> RGB swap
        bgr[0, 0, 1], bgr[0, 1, 1] = self.count % 256, self.count // 256 % 256
        self.count += 1
        return bgr


class FakeCapture:
    def __init__(self, camera: FakeCamera):
        self.camera = camera
        self.opened = camera.mode != "unplugged"
        camera.good_opens += self.opened
        self.last: np.ndarray | None = None

    def isOpened(self) -> bool:
        return self.opened

    def read(self):
        camera = self.camera
        time.sleep(1.0 / camera.fps)
        give_up = time.monotonic() + 3.0  # a test that forgets to end a stall cannot hang
        while camera.mode == "stall" and time.monotonic() < give_up:
            time.sleep(0.005)
        if not self.opened or camera.mode in ("fail", "unplugged"):
            return False, None
        if camera.mode == "freeze" and self.last is not None:
            return True, self.last.copy()
        self.last = camera.next_frame()
        return True, self.last

    def release(self) -> None:
        if self.opened:
            self.camera.releases += 1
        self.opened = False

    def get(self, prop: int) -> float:
        return self.camera.fps if prop == cv2.CAP_PROP_FPS else 0.0
