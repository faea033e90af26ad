"""MQTT for fleets (``--mqtt mqtt://host:port/prefix``): each event, and the kiosk's state.

Why: ten kiosks report to one place without anyone collecting files. The optional extra
``pip install 'waste-vision[mqtt]'`` brings paho-mqtt; without it ``--mqtt`` is one line
naming the extra (exit 2).

* ``<prefix>/<site>/event``: each row of the events database as JSON (``Event.as_dict``),
  QoS 1, in the order written. The database is the outbox: a row is marked ``sent`` only
  once the broker acknowledged it, so a broker that is down (or a kiosk restarted while it
  was) loses nothing: the rows wait and go out, in order, when it is back. QoS 1 is "at
  least once": after a connection lost mid-send a row can arrive twice; ``id`` and
  ``site`` tell a consumer it has it already.
* ``<prefix>/<site>/state``: retained ``{"status": "online", "verdict", "fps", ...}`` every
  ``STATE_EVERY_S`` and when the verdict changes; ``offline`` on a clean close and, as the
  last will, when the kiosk vanishes.
* Never on the frame path: ``write`` (a pipeline ``Sink``) only keeps the latest verdict and
  rate; publishing happens in this module's thread and paho's network thread. A broker
  that is down costs the pipeline nothing.
* ``mqtts://`` is TLS (the system's CAs, or ``--mqtt-ca``); a user name goes in the URL,
  its password never does: ``WASTE_VISION_MQTT_PASSWORD`` or ``--mqtt-password-file``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np

from waste_vision.engine.events import EventStore
from waste_vision.engine.frames import FrameResult
from waste_vision.errors import UserError

log = logging.getLogger(__name__)

PASSWORD_ENV = "WASTE_VISION_MQTT_PASSWORD"
DEFAULT_PREFIX = "waste-vision"
STATE_EVERY_S = 10.0
MAX_IN_FLIGHT = 100  # rows handed to paho and not yet acknowledged
KEEPALIVE_S = 15
CLOSE_TIMEOUT_S = 3.0
EXTRA_HINT = "pip install 'waste-vision[mqtt]'"


@dataclass(frozen=True)
class MqttTarget:
    """Where and how to connect; ``password`` is never printed (``__repr__`` hides it)."""

    host: str
    port: int
    prefix: str
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca: Path | None = None

    def __repr__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}/{self.prefix}"

    def topic(self, site: str, leaf: str) -> str:
        return f"{self.prefix}/{site}/{leaf}" if self.prefix else f"{site}/{leaf}"


def parse_mqtt_url(
    url: str, *, password_file: Path | None = None, ca: Path | None = None
) -> MqttTarget:
    """``mqtt[s]://[user@]host[:port][/prefix]`` -> ``MqttTarget``; UserError otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UserError(f"--mqtt {url}: {exc}; give mqtt://host:port/prefix") from None
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise UserError(f"--mqtt {url}: give mqtt://host[:port][/prefix] (or mqtts:// for TLS)")
    if parts.password is not None:
        raise UserError(
            "--mqtt: the URL holds a password; never put it on the command line: set "
            f"{PASSWORD_ENV} or give --mqtt-password-file, and only the user name in the URL"
        )
    password = None
    if password_file is not None:
        try:
            password = Path(password_file).expanduser().read_text().rstrip("\r\n")
        except OSError as exc:
            raise UserError(
                f"--mqtt-password-file {password_file}: cannot read it ({exc.strerror or exc})"
            ) from None
    elif os.environ.get(PASSWORD_ENV):
        password = os.environ[PASSWORD_ENV]
    if ca is not None and not Path(ca).expanduser().is_file():
        raise UserError(f"--mqtt-ca {ca}: no such file; give the CA certificate (PEM)")
    tls = parts.scheme == "mqtts"
    return MqttTarget(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        prefix=parts.path.strip("/") or DEFAULT_PREFIX,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=password,
        ca=None if ca is None else Path(ca).expanduser(),
    )


def require_paho():
    """The paho-mqtt module, or one line naming the extra to install (exit 2)."""
    try:
        import paho.mqtt.client as mqtt_client
    except ImportError:
        raise UserError(f"--mqtt needs the mqtt extra: {EXTRA_HINT}") from None
    return mqtt_client


class MqttPublisher:
    """Sends the outbox of ``events`` (an events database) to the broker, and the state.

    A pipeline ``Sink`` for the state only: ``write`` keeps the verdict and rate."""

    def __init__(
        self,
        target: MqttTarget,
        events: Path,
        *,
        site: str,
        model_version: str | None = None,
        on_connection: Callable[[bool], None] | None = None,
    ):
        paho = require_paho()
        self.target = target
        self.site = site
        self.model_version = model_version
        self.on_connection = on_connection
        self.events_path = Path(events)
        self.sent = 0  # rows the broker acknowledged
        self.pending = 0  # rows in the outbox, as last counted (metrics)
        self.connected = threading.Event()
        self._verdict: str | None = None
        self._fps = 0.0
        self._state_sent: tuple[str | None, float] = (None, 0.0)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._drained = threading.Event()  # nothing waits in the outbox or in flight
        self._in_flight: dict[int, object] = {}  # event id -> paho's MQTTMessageInfo
        self._after = 0  # the highest id handed to paho
        client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=f"waste-vision-{site}-{os.getpid()}",
            protocol=paho.MQTTv311,
        )
        client.max_inflight_messages_set(MAX_IN_FLIGHT)
        client.will_set(self._state_topic, self._state("offline"), qos=1, retain=True)
        if target.username:
            client.username_pw_set(target.username, target.password)
        if target.tls:
            client.tls_set(ca_certs=str(target.ca) if target.ca else None)
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = lambda *_args: self._wake.set()
        self.client = client
        self._thread = threading.Thread(target=self._work, name="mqtt outbox", daemon=True)
        try:
            client.connect_async(target.host, target.port, keepalive=KEEPALIVE_S)
        except (OSError, ValueError) as exc:
            raise UserError(f"--mqtt {target!r}: {exc}") from None
        client.loop_start()  # paho's network thread: connects, and reconnects forever
        self._thread.start()

    @property
    def _state_topic(self) -> str:
        return self.target.topic(self.site, "state")

    def _state(self, status: str) -> str:
        return json.dumps(
            {
                "status": status,
                "site": self.site,
                "verdict": self._verdict,
                "fps": round(self._fps, 2),
                "model_version": self.model_version,
                "time": round(time.time(), 3),
            }
        )

    def wake(self, _ids: object = None) -> None:
        """New rows were committed (the events writer calls this)."""
        self._wake.set()

    # -- the Sink: the frame path ---------------------------------------------------------------

    def write(self, result: FrameResult, annotated: np.ndarray) -> None:
        self._verdict = result.verdict
        self._fps = result.classify_fps

    def close(self) -> None:
        """Send what the broker takes within ``CLOSE_TIMEOUT_S`` (the rest stays in the
        outbox for the next run), say ``offline``, disconnect."""
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        self._wake.set()
        while self.connected.is_set() and time.monotonic() < deadline:
            if self._drained.wait(0.05):
                break
            self._wake.set()
        self._stop.set()
        self._wake.set()
        self._thread.join(CLOSE_TIMEOUT_S)
        if self.connected.is_set():
            info = self.client.publish(
                self._state_topic, self._state("offline"), qos=1, retain=True
            )
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        self.client.disconnect()
        self.client.loop_stop()

    # -- the outbox thread ----------------------------------------------------------------------

    def _work(self) -> None:
        store = EventStore(self.events_path)
        try:
            while not self._stop.is_set():
                self._wake.wait(1.0)
                self._wake.clear()
                self._settle(store)
                if self.connected.is_set():
                    self._send(store)
                    self._send_state()
                self.pending = store.unsent_count()
                if self.pending == 0 and not self._in_flight:
                    self._drained.set()
                else:
                    self._drained.clear()
            self._settle(store)
        except Exception:  # the pipeline goes on; the rows stay in the outbox
            log.exception("MQTT outbox stopped")
        finally:
            store.close()

    def _settle(self, store: EventStore) -> None:
        """Mark the rows the broker acknowledged as sent (in the order sent)."""
        done = [i for i, info in self._in_flight.items() if info.is_published()]  # type: ignore[attr-defined]
        if done:
            store.mark_sent(done)
            for i in done:
                del self._in_flight[i]
            self.sent += len(done)

    def _send(self, store: EventStore) -> None:
        room = MAX_IN_FLIGHT - len(self._in_flight)
        if room <= 0:
            return
        topic = self.target.topic(self.site, "event")
        for event in store.unsent(room, after=self._after):
            assert event.id is not None
            payload = json.dumps(event.as_dict(), separators=(",", ":"))
            self._in_flight[event.id] = self.client.publish(topic, payload, qos=1)
            self._after = event.id

    def _send_state(self) -> None:
        now = time.monotonic()
        verdict, at = self._state_sent
        if verdict == self._verdict and now - at < STATE_EVERY_S:
            return
        self._state_sent = (self._verdict, now)
        self.client.publish(self._state_topic, self._state("online"), qos=0, retain=True)

    # -- paho's thread --------------------------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT %r refused the connection: %s", self.target, reason_code)
            return
        log.info("MQTT connected to %r", self.target)
        self.connected.set()
        client.publish(self._state_topic, self._state("online"), qos=1, retain=True)
        if self.on_connection is not None:
            self.on_connection(True)
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected.is_set():
            log.info(
                "MQTT %r: disconnected (%s); events wait in the outbox", self.target, reason_code
            )
        self.connected.clear()
        if self.on_connection is not None:
            self.on_connection(False)
