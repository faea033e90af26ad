"""What events, MQTT and metrics cost on the frame path, and what a broker outage does.

1. The counting clip (``assets/demo.mp4``) through the real classifier once; its frame
   results are then handed to the sinks (``EventSink`` with crops, ``MetricsSink``,
   ``MqttPublisher`` to a real Mosquitto) ``--loops`` times: the time ``write`` takes per
   frame (target: at most 0.2 ms).
2. A live-like run: the results replayed at the clip's 30 FPS for ``--outage`` seconds
   plus 20, once without MQTT and once with the broker stopped for ``--outage`` seconds
   in the middle; the frame latency (classification, from the clip run, plus the sinks)
   p95 of each, and whether every event arrived once, in order, after the broker came back.

    .venv/bin/python benchmarks/events_cost.py [--loops 10] [--outage 60]
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from waste_vision.commands.annotate import build_frame_stage
from waste_vision.engine.events import EventSink, EventStore, EventWriter
from waste_vision.engine.frames import FrameResult
from waste_vision.engine.metrics import MetricsSink
from waste_vision.engine.mqtt import MqttPublisher, parse_mqtt_url
from waste_vision.engine.sources import FileSource

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "assets" / "demo.mp4"


def clip_results() -> list[FrameResult]:
    """The clip's frame results; frames that counted nothing keep a 1-pixel image (memory)."""
    classifier, _ = build_frame_stage(models=None, backend="litert", threads=2, int8=False)
    source = FileSource(str(CLIP))
    source.start()
    results = []
    tiny = np.zeros((1, 1, 3), np.uint8)
    while True:
        frame = source.read(timeout=5)
        if frame is None:
            if source.finished:
                break
            continue
        result = classifier(frame)
        if not result.counted:
            result = dataclasses.replace(result, frame=dataclasses.replace(frame, image=tiny))
        results.append(result)
    source.stop()
    return results


class Broker:
    def __init__(self, folder: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
            f"persistence true\npersistence_location {folder}/\n"
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([exe, "-c", str(self.conf)], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


class Collector:
    """A subscriber with a persistent session: what a fleet's consumer receives."""

    def __init__(self, port: int, name: str):
        import paho.mqtt.client as paho

        self.ids: list[int] = []
        self.lock = threading.Lock()
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=name, clean_session=False)
        c.on_connect = lambda client, *_: client.subscribe("bench/+/event", qos=1)
        c.on_message = self._on
        c.reconnect_delay_set(0.2, 1)
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c

    def _on(self, client, userdata, msg) -> None:
        if not msg.dup:  # a broker's own redelivery (per hop) is not our publisher's
            with self.lock:
                self.ids.append(json.loads(msg.payload)["id"])

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def open_sinks(folder: Path, broker: Broker | None, name: str):
    db = folder / f"{name}.sqlite"
    writer = EventWriter(db, crops=folder / f"{name}-crops")
    sinks: list = [EventSink(writer, site="bench", source="clip", outbox=broker is not None)]
    metrics = MetricsSink(0, addr="127.0.0.1")
    metrics.watch_queue(lambda: writer.queued)
    sinks.append(metrics)
    publisher = None
    if broker is not None:
        target = parse_mqtt_url(f"mqtt://127.0.0.1:{broker.port}/bench")
        publisher = MqttPublisher(target, db, site="bench")
        writer.on_commit.append(publisher.wake)
        sinks.append(publisher)
    return db, writer, sinks, publisher


def cost_per_frame(results, folder: Path, broker: Broker | None, loops: int) -> np.ndarray:
    db, writer, sinks, publisher = open_sinks(folder, broker, "cost")
    if publisher is not None:
        publisher.connected.wait(10)
    times = []
    image = np.zeros((1, 1, 3), np.uint8)
    for _ in range(loops):
        for result in results:
            start = time.perf_counter()
            for sink in sinks:
                sink.write(result, image)
            times.append(time.perf_counter() - start)
    for sink in sinks:
        sink.close()
    writer.close()
    return np.array(times) * 1000


def live_run(results, folder: Path, broker: Broker | None, seconds: float, outage: float):
    """Results replayed at 30 FPS for ``seconds``; the broker (if any) down for ``outage``
    seconds from 10 s in (back 20 s before the end). Returns per-frame latency (ms), events
    written."""
    name = "mqtt" if broker else "plain"
    db, writer, sinks, publisher = open_sinks(folder, broker, name)
    if publisher is not None:
        publisher.connected.wait(10)
    image = np.zeros((1, 1, 3), np.uint8)
    latency: list[float] = []
    added: list[float] = []  # the sinks' own time per frame
    start = time.monotonic()
    down_at = start + 10.0
    down = False
    n = 0
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        if broker is not None and not down and now >= down_at:
            broker.stop()
            down = True
        if broker is not None and down and now >= down_at + outage and broker.proc:
            broker.start()
            down_at = float("inf")
        result = results[n % len(results)]
        t0 = time.perf_counter()
        for sink in sinks:
            sink.write(result, image)
        added.append((time.perf_counter() - t0) * 1000)
        latency.append(result.latency_ms + added[-1])
        n += 1
        time.sleep(max(0.0, start + n / 30 - time.monotonic()))
    writer.close()
    if publisher is not None:
        deadline = time.monotonic() + 60
        store = EventStore(db)
        while store.unsent_count() and time.monotonic() < deadline:
            time.sleep(0.1)
        store.close()
    for sink in sinks:
        sink.close()
    print(
        f"  {name}: sinks p95 {np.percentile(added, 95):.4f} ms, max {max(added):.3f} ms "
        f"over {len(added)} frames"
    )
    return np.array(latency), EventStore(db).count()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loops", type=int, default=10)
    parser.add_argument("--outage", type=float, default=60.0)
    args = parser.parse_args()
    results = clip_results()
    counted = sum(len(r.counted) for r in results)
    print(f"clip: {len(results)} frames, {counted} items counted")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = Broker(folder)
        broker.start()
        collector = Collector(broker.port, "bench-cost")
        ms = cost_per_frame(results, folder, broker, args.loops)
        print(
            f"frame path, events (crops) + metrics + MQTT: mean {ms.mean():.4f} ms, "
            f"p95 {np.percentile(ms, 95):.4f} ms, max {ms.max():.3f} ms over {len(ms)} frames"
        )
        collector.close()
        seconds = args.outage + 30
        plain, _ = live_run(results, folder, None, seconds, 0)
        collector = Collector(broker.port, "bench-live")
        with_mqtt, written = live_run(results, folder, broker, seconds, args.outage)
        deadline = time.monotonic() + 30
        while len(collector.ids) < written and time.monotonic() < deadline:
            time.sleep(0.1)
        collector.close()
        broker.stop()
        p_plain, p_mqtt = np.percentile(plain, 95), np.percentile(with_mqtt, 95)
        once = collector.ids == list(range(1, written + 1))
        print(
            f"live {seconds:.0f} s at 30 FPS, broker down {args.outage:.0f} s: frame latency "
            f"p95 {p_mqtt:.2f} ms vs {p_plain:.2f} ms without MQTT "
            f"({(p_mqtt / p_plain - 1) * 100:+.1f}%); {written} events, "
            f"{len(collector.ids)} received, each once in order: {once}"
        )
        if not once:
            print(f"  received ids: {collector.ids}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
