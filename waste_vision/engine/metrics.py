"""Prometheus metrics (``--metrics-port N``): what a fleet's monitoring needs to see a kiosk.

Why: a kiosk that has stopped counting, lost its camera or fallen behind should show on a
dashboard before anyone walks past it. ``MetricsSink`` is a pipeline ``Sink`` whose
``write`` only bumps counters and one histogram (microseconds); ``prometheus_client``
serves them over HTTP from its own thread, on a registry of our own (so two in one process,
as in the tests, never collide).

Metrics (all prefixed ``waste_vision_``): ``frames_captured_total``,
``frames_classified_total``, ``frame_latency_seconds`` (histogram, capture to classified),
``items_counted_total{label,bin}``, ``camera_connected``, ``recording_active``,
``events_queued`` (waiting for the database writer or the broker), ``mqtt_connected``, and
``model_info{version,profile}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from waste_vision.engine.events import bin_of
from waste_vision.engine.frames import FrameResult
from waste_vision.errors import UserError

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)


class MetricsSink:
    """Counts what the pipeline does and serves it on ``port`` (0: a free one, ``port``
    says which); UserError when the port cannot be had."""

    def __init__(self, port: int, *, addr: str = "0.0.0.0"):
        try:
            from prometheus_client import (
                CollectorRegistry,
                Counter,
                Gauge,
                Histogram,
                Info,
                start_http_server,
            )
        except ImportError:  # a base dependency; only a broken install lacks it
            raise UserError(
                "--metrics-port needs prometheus_client: pip install prometheus_client"
            ) from None
        if not 0 <= port <= 65535:
            raise UserError(f"--metrics-port {port}: give a port number from 1 to 65535")
        self.registry = registry = CollectorRegistry()
        self.captured = Counter(
            "waste_vision_frames_captured",
            "Frames the source produced (those dropped for a fresher one included)",
            registry=registry,
        )
        self.classified = Counter(
            "waste_vision_frames_classified", "Frames classified", registry=registry
        )
        self.latency = Histogram(
            "waste_vision_frame_latency_seconds",
            "Capture to classification done, per frame",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.items = Counter(
            "waste_vision_items_counted",
            "Items counted, by label and bin",
            ["label", "bin"],
            registry=registry,
        )
        self.camera = Gauge(
            "waste_vision_camera_connected",
            "1 while the source (camera, stream or file) delivers frames",
            registry=registry,
        )
        self.recording_active = Gauge(
            "waste_vision_recording_active", "1 while a recording is written", registry=registry
        )
        self.queued = Gauge(
            "waste_vision_events_queued",
            "Events waiting for the database writer or, with MQTT, for the broker",
            registry=registry,
        )
        self.mqtt = Gauge(
            "waste_vision_mqtt_connected",
            "1 while connected to the MQTT broker (absent without --mqtt)",
            registry=registry,
        )
        self.model = Info(
            "waste_vision_model", "The models and site profile in use", registry=registry
        )
        self._last_index = -1
        try:
            self._server, self._thread = start_http_server(port, addr=addr, registry=registry)
        except OSError as exc:
            raise UserError(
                f"--metrics-port {port}: cannot serve metrics there ({exc.strerror or exc}); "
                "give a free port"
            ) from None
        self.port = int(self._server.server_port)
        log.info("metrics served on http://%s:%d/metrics", addr, self.port)

    def set_model(self, version: str, profile: str | None) -> None:
        self.model.info({"version": version, "profile": profile or ""})

    def watch_queue(self, queued: Callable[[], float]) -> None:
        """``events_queued`` asks ``queued`` at each scrape (never on the frame path)."""
        self.queued.set_function(queued)

    def set_camera(self, connected: bool) -> None:
        self.camera.set(1 if connected else 0)

    def set_recording(self, active: bool) -> None:
        self.recording_active.set(1 if active else 0)

    def set_mqtt(self, connected: bool) -> None:
        self.mqtt.set(1 if connected else 0)

    def write(self, result: FrameResult, annotated: np.ndarray) -> None:
        index = result.frame.index
        if index > self._last_index:  # a source's index counts every frame it produced
            self.captured.inc(index - self._last_index)
            self._last_index = index
        elif index < self._last_index:  # a new source: its count starts again
            self.captured.inc()
            self._last_index = index
        self.classified.inc()
        self.latency.observe(result.latency_ms / 1000.0)
        if result.counted:
            regions = result.counted_regions
            for i, label in enumerate(result.counted):
                region = regions[i] if i < len(regions) else None
                self.items.labels(label, bin_of(label, region) or "").inc()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2.0)
