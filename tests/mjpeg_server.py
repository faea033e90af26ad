"""A small MJPEG (multipart/x-mixed-replace) server on 127.0.0.1 for stream tests.

It serves a clip's frames, re-encoded as JPEG, at a fixed rate to every client, looping, and
can be stopped (every connection is closed, as when a camera or its network goes away) and
started again on the same port. Events tell a test when a client connected and how many
frames went out, so tests wait on them instead of sleeping.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

BOUNDARY = "wvframe"


def jpeg_frames(clip: Path, count: int = 60, size: tuple[int, int] = (320, 180)) -> list[bytes]:
    """The first ``count`` frames of ``clip`` at ``size``, as JPEG bytes."""
    cap = cv2.VideoCapture(str(clip))
    frames = []
    while len(frames) < count:
        ok, bgr = cap.read()
        if not ok:
            break
        ok, data = cv2.imencode(".jpg", cv2.resize(bgr, size), [cv2.IMWRITE_JPEG_QUALITY, 80])
        frames.append(data.tobytes())
    cap.release()
    assert frames, f"no frame could be read from {clip}"
    return frames


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MJPEGServer:
    """``start()`` / ``stop()`` as often as needed; ``url`` stays the same."""

    def __init__(
        self,
        frames: list[bytes],
        fps: float = 30.0,
        port: int | None = None,
        path: str = "/stream.mjpg",
    ):
        self.frames, self.fps, self.path = frames, fps, path
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self.sent = 0  # frames sent to all clients since the first start
        self.connected = threading.Event()  # a client is being served
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> MJPEGServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                if self.path != owner.path:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                owner.connected.set()
                interval, k = 1.0 / owner.fps, 0
                start = time.monotonic()
                try:
                    while not owner._stop.is_set():
                        data = owner.frames[k % len(owner.frames)]
                        self.wfile.write(
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(data)}\r\n\r\n".encode()
                            + data
                            + b"\r\n"
                        )
                        self.wfile.flush()
                        k += 1
                        with owner._cond:
                            owner.sent += 1
                            owner._cond.notify_all()
                        owner._stop.wait(max(0.0, start + k * interval - time.monotonic()))
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass
                finally:
                    owner.connected.clear()

        self._stop.clear()
        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="mjpeg server",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Go away: stop serving and close every client connection."""
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.connected.clear()

    def wait_sent(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` frames in all have been sent."""
        with self._cond:
            return self._cond.wait_for(lambda: self.sent >= count, timeout)

    def __enter__(self) -> MJPEGServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def synthetic_frames(count: int = 30, size: tuple[int, int] = (160, 120)) -> list[bytes]:
    """Frames whose top-left patch gets brighter, so a reader can tell them apart."""
    w, h = size
    out = []
    for i in range(count):
        bgr = np.zeros((h, w, 3), np.uint8)
        bgr[:] = (0, 0, 255)
        bgr[:32, :32] = 8 * i
        out.append(cv2.imencode(".jpg", bgr)[1].tobytes())
    return out
