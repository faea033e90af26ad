"""``--mqtt``: events and state through a real Mosquitto broker started by the tests; the
outbox across a broker outage; credentials; paho missing. Without ``mosquitto`` installed
the broker tests are skipped, except in CI (``CI=1``, set by ``.ci/run``), where they fail."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, wait_until
from waste_vision.commands.cli import main
from waste_vision.engine.events import Event, EventKind, EventStore, EventWriter
from waste_vision.engine.mqtt import MqttPublisher, parse_mqtt_url
from waste_vision.errors import UserError

paho = pytest.importorskip("paho.mqtt.client")

CLIP = ROOT / "assets" / "demo.mp4"
MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)


def wait_for(condition, timeout: float = 20.0, what: str = "condition") -> None:
    wait_until(condition, timeout, what)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A Mosquitto of our own on a free port; its sessions persist across ``stop``/``start``
    (so a subscriber keeps what arrived while it was away, as a fleet's consumer does)."""

    def __init__(self, folder: Path, password_file: Path | None = None):
        self.port = free_port()
        self.folder = folder
        self.conf = folder / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            # run as root (CI) it would switch to the mosquitto user, who cannot read our files
            f"user {getpass.getuser()}",
            "persistence true",
            f"persistence_location {folder}/",
        ]
        if password_file is None:
            lines.append("allow_anonymous true")
        else:
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        assert MOSQUITTO is not None
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "broker.log").open("ab"),
        )

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(listening, 10, "mosquitto to listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def broker(tmp_path):
    if MOSQUITTO is None:
        message = "mosquitto is not installed (apt-get install mosquitto)"
        if os.environ.get("CI") == "1":
            pytest.fail(message)
        pytest.skip(message)
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


class Subscriber:
    """Everything under ``topic``, with a persistent session (QoS 1)."""

    def __init__(self, port: int, topic: str = "wv/#", name: str = "test-subscriber", **auth):
        self.messages: list[tuple[str, dict, bool, bool]] = []  # topic, payload, retain, dup
        self.lock = threading.Lock()
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=name, clean_session=False)
        if auth:
            client.username_pw_set(auth["username"], auth["password"])
        client.reconnect_delay_set(0.2, 1)
        client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        client.on_message = self._on_message
        client.connect("127.0.0.1", port)
        client.loop_start()
        self.client = client

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.messages.append(
                (msg.topic, json.loads(msg.payload), bool(msg.retain), bool(msg.dup))
            )

    def events(self) -> list[dict]:
        with self.lock:
            return [p for t, p, _, _ in self.messages if t.endswith("/event")]

    def first_deliveries(self) -> list[dict]:
        """Events without the DUP flag: a broker restarted before it saw the subscriber's
        acknowledgement sends those again, flagged; what our publisher sends twice would
        come unflagged (the flag is per hop)."""
        with self.lock:
            return [p for t, p, _, dup in self.messages if t.endswith("/event") and not dup]

    def states(self) -> list[dict]:
        with self.lock:
            return [p for t, p, _, _ in self.messages if t.endswith("/state")]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def item(n: int) -> Event:
    return Event(EventKind.ITEM, 1000.0 + n, "k1", "cam", "glass", "recyclable", 0.9, sent=0)


def open_outbox(tmp_path, port: int, **target):
    writer = EventWriter(tmp_path / "e.sqlite")
    url = f"mqtt://{target.pop('user', '')}127.0.0.1:{port}/wv"
    publisher = MqttPublisher(parse_mqtt_url(url, **target), tmp_path / "e.sqlite", site="k1")
    writer.on_commit.append(publisher.wake)
    return writer, publisher


def test_events_and_state_reach_the_broker_in_order(broker, tmp_path):
    sub = Subscriber(broker.port)
    writer, publisher = open_outbox(tmp_path, broker.port)
    try:
        wait_for(publisher.connected.is_set, what="the publisher to connect")
        for n in range(5):
            writer.put([item(n)])
        wait_for(lambda: len(sub.events()) == 5, what="five events")
        events = sub.events()
        assert [e["id"] for e in events] == [1, 2, 3, 4, 5]
        assert events[0]["label"] == "glass" and events[0]["site"] == "k1"
        assert events[0]["bin"] == "recyclable" and "crop" not in events[0]
        wait_for(lambda: EventStore(tmp_path / "e.sqlite").unsent_count() == 0, what="sent")
        assert any(s["status"] == "online" for s in sub.states())
    finally:
        writer.close()
        publisher.close()
    wait_for(lambda: sub.states() and sub.states()[-1]["status"] == "offline", what="offline")
    sub.close()
    # the state is retained: a newcomer learns it at once
    late = Subscriber(broker.port, "wv/k1/state", name="late")
    wait_for(lambda: late.states(), what="the retained state")
    assert late.states()[-1]["status"] == "offline"
    late.close()


def _outage(broker, tmp_path, down_s: float) -> None:
    """Events before, during and after ``down_s`` seconds of broker outage: each arrives
    once, in order; while it is down they wait in the outbox and ``put`` never waits."""
    sub = Subscriber(broker.port)
    writer, publisher = open_outbox(tmp_path, broker.port)
    try:
        wait_for(publisher.connected.is_set, what="the publisher to connect")
        for n in range(3):
            writer.put([item(n)])
        wait_for(lambda: len(sub.events()) == 3, what="the first three")
        broker.stop()
        wait_for(lambda: not publisher.connected.is_set(), what="the publisher to notice")
        puts = []
        end = time.monotonic() + down_s
        n = 3
        while time.monotonic() < end or n < 8:
            start = time.perf_counter()
            writer.put([item(n)])
            puts.append(time.perf_counter() - start)
            n += 1
            time.sleep(min(0.5, down_s / 10))
        store = EventStore(tmp_path / "e.sqlite")
        wait_for(lambda: store.count() == n, what="the rows written while down")
        assert store.unsent_count() == n - 3  # waiting in the outbox
        assert max(puts) < 0.05  # the frame path never waits for the broker
        broker.start()
        wait_for(lambda: store.unsent_count() == 0, 60, "the outbox to empty")
        wait_for(lambda: len(sub.first_deliveries()) >= n, 30, "every event after the outage")
        ids = [e["id"] for e in sub.first_deliveries()]
        assert ids == list(range(1, n + 1))  # each once, in order
        assert {e["id"] for e in sub.events()} == set(ids)
    finally:
        writer.close()
        publisher.close()
        sub.close()


def test_a_broker_down_loses_nothing(broker, tmp_path):
    _outage(broker, tmp_path, down_s=3.0)


@pytest.mark.slow
def test_a_broker_down_60_s_loses_nothing(broker, tmp_path):
    _outage(broker, tmp_path, down_s=60.0)


def test_user_and_password_from_the_environment(tmp_path, monkeypatch):
    if MOSQUITTO is None or shutil.which("mosquitto_passwd") is None:
        if os.environ.get("CI") == "1":
            pytest.fail("mosquitto is not installed (apt-get install mosquitto)")
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "kiosk", "s3cret"], check=True)
    passwords.chmod(0o600)
    broker = Broker(tmp_path, password_file=passwords)
    broker.start()
    try:
        sub = Subscriber(broker.port, username="kiosk", password="s3cret")
        monkeypatch.setenv("WASTE_VISION_MQTT_PASSWORD", "s3cret")
        writer, publisher = open_outbox(tmp_path, broker.port, user="kiosk@")
        assert "s3cret" not in repr(publisher.target)
        writer.put([item(0)])
        wait_for(lambda: len(sub.events()) == 1, what="the event")
        writer.close()
        publisher.close()
        sub.close()
    finally:
        broker.stop()


def test_annotate_publishes_its_events(broker, tmp_path, capsys):
    sub = Subscriber(broker.port)
    db = tmp_path / "e.sqlite"
    args = ["annotate", str(CLIP), "-o", str(tmp_path / "o.mp4"), "--max-frames", "330"]
    url = f"mqtt://127.0.0.1:{broker.port}/wv"
    assert main([*args, "--events", str(db), "--site", "k9", "--mqtt", url]) == 0
    rows = EventStore(db).events()
    wait_for(lambda: len(sub.events()) == len(rows) == 2, what="annotate's events")
    assert [e["label"] for e in sub.events()] == [r.label for r in rows]
    assert all(r.sent == 1 for r in EventStore(db).events())
    wait_for(lambda: sub.states() and sub.states()[-1]["status"] == "offline", what="offline")
    sub.close()


def test_without_paho_mqtt_is_one_line_naming_the_extra(tmp_path, monkeypatch, capsys):
    for name in ("paho", "paho.mqtt", "paho.mqtt.client"):
        monkeypatch.setitem(sys.modules, name, None)
    out = tmp_path / "o.mp4"
    code = main(["annotate", str(CLIP), "-o", str(out), "--mqtt", "mqtt://localhost/wv"])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'waste-vision[mqtt]'" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_a_password_in_the_url_is_refused_and_never_shown(tmp_path, capsys):
    out = tmp_path / "o.mp4"
    code = main(["annotate", str(CLIP), "-o", str(out), "--mqtt", "mqtt://u:hunter2@h/wv"])
    err = capsys.readouterr().err
    assert code == 2 and "WASTE_VISION_MQTT_PASSWORD" in err and "hunter2" not in err


@pytest.mark.parametrize(
    "url, words",
    [("http://h/x", "give mqtt://"), ("mqtt://h:99999/x", "--mqtt mqtt://h:99999/x")],
)
def test_bad_urls_are_one_line(url, words):
    with pytest.raises(UserError, match=words.replace("?", r"\?")):
        parse_mqtt_url(url)


def test_urls_give_host_port_prefix_and_tls():
    t = parse_mqtt_url("mqtts://kiosk@broker.example:8884/fleet/a")
    assert (t.host, t.port, t.prefix, t.tls, t.username) == (
        "broker.example",
        8884,
        "fleet/a",
        True,
        "kiosk",
    )
    assert t.topic("k1", "event") == "fleet/a/k1/event"
    assert parse_mqtt_url("mqtt://h").port == 1883 and parse_mqtt_url("mqtts://h").port == 8883
