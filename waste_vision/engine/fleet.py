"""What a kiosk keeps and shares besides its video, opened and closed as one: the events
database (``events``), the MQTT publisher of its outbox (``mqtt``) and the metrics server
(``metrics``). ``annotate`` and the window wire them the same way through this.

Everything is checked before the first frame (a bad URL, a busy port, paho missing, a
database that is something else: one line, exit 2); once running, none of them can slow
or stop the pipeline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from waste_vision.engine.events import (
    DEFAULT_KEEP_DAYS,
    EventSink,
    EventWriter,
    default_crops_dir,
    default_site,
)
from waste_vision.engine.metrics import MetricsSink
from waste_vision.engine.mqtt import MqttPublisher, MqttTarget, parse_mqtt_url, require_paho
from waste_vision.engine.pipeline import Sink
from waste_vision.engine.sources import SourceStatus, StatusEvent
from waste_vision.model.cascade import Cascade

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FleetOptions:
    """The events, MQTT and metrics options of ``annotate`` and ``app``, as given once on
    the command line (``from_args``) and handed whole to ``FleetOutputs.open``.

    ``events``: the events database (None: none kept); ``save_crops``: a folder for each
    counted item's crop (True: the one beside the database); ``site``: the name events
    carry (None: the host's); ``events_keep_days``: how long events are kept (None: the
    default); ``mqtt``: the broker URL the outbox is published to, with its password file
    and CA certificate; ``metrics_port``: Prometheus metrics served on that port.
    """

    events: Path | None = None
    save_crops: Path | bool | None = None
    site: str | None = None
    events_keep_days: float | None = None
    mqtt: str | None = None
    mqtt_password_file: Path | None = None
    mqtt_ca: Path | None = None
    metrics_port: int | None = None

    @classmethod
    def from_args(cls, args) -> FleetOptions:
        """The options of parsed ``annotate`` or ``app`` arguments: the events database in
        the user's data folder unless ``--no-events`` or ``--events``."""
        from waste_vision.engine.events import default_events_path
        from waste_vision.errors import UserError

        no_events = getattr(args, "no_events", False)
        events = getattr(args, "events", None)
        save_crops = getattr(args, "save_crops", None)
        if no_events and (events is not None or save_crops is not None):
            raise UserError("--no-events with --events or --save-crops: give one or the other")
        return cls(
            events=None if no_events else Path(events or default_events_path()).expanduser(),
            save_crops=save_crops,
            site=getattr(args, "site", None),
            events_keep_days=getattr(args, "events_keep_days", None),
            mqtt=getattr(args, "mqtt", None),
            mqtt_password_file=getattr(args, "mqtt_password_file", None),
            mqtt_ca=getattr(args, "mqtt_ca", None),
            metrics_port=getattr(args, "metrics_port", None),
        )

    def check(self) -> MqttTarget | None:
        """``--mqtt`` checked before any work (see ``check_mqtt``; it needs the events
        database, whose rows it sends); None without it."""
        if self.mqtt is None:
            return None
        if self.events is None:
            from waste_vision.errors import UserError

            raise UserError("--mqtt sends the events database's rows: leave out --no-events")
        return check_mqtt(self.mqtt, password_file=self.mqtt_password_file, ca=self.mqtt_ca)


def check_mqtt(
    url: str, *, password_file: Path | None = None, ca: Path | None = None
) -> MqttTarget:
    """``--mqtt`` checked before any work: paho installed (else one line naming the
    extra), the URL well formed, the password file readable."""
    require_paho()
    return parse_mqtt_url(url, password_file=password_file, ca=ca)


class FleetOutputs:
    """The events sink, the MQTT publisher and the metrics sink of one run (or one window's
    life), each present only when asked for."""

    def __init__(self) -> None:
        self.writer: EventWriter | None = None
        self.events: EventSink | None = None
        self.publisher: MqttPublisher | None = None
        self.metrics: MetricsSink | None = None
        self.source_running = False  # the last status seen, for a gauge made after it

    @property
    def sinks(self) -> list[Sink]:
        return [s for s in (self.events, self.metrics, self.publisher) if s is not None]

    @property
    def events_written(self) -> int | None:
        return None if self.writer is None else self.writer.written

    def open(
        self, cascade: Cascade, source: str, options: FleetOptions | None = None
    ) -> FleetOutputs:
        """Open what ``options`` ask for (None: nothing); closes what it opened if one of
        them fails."""
        options = options or FleetOptions()
        site = options.site or default_site()
        events = options.events
        target = options.check()  # before anything is opened
        try:
            if options.metrics_port is not None:
                self.metrics = MetricsSink(options.metrics_port)
                self.metrics.set_model(cascade.model_version, _profile_version(cascade))
                self.metrics.set_camera(self.source_running)
            if events is not None:
                crops = options.save_crops
                if crops is True:
                    crops = default_crops_dir(Path(events))
                keep = options.events_keep_days
                self.writer = EventWriter(
                    Path(events),
                    keep_days=DEFAULT_KEEP_DAYS if keep is None else keep,
                    crops=Path(crops) if crops else None,
                )
                self.events = EventSink(
                    self.writer,
                    site=site,
                    source=source,
                    cascade=cascade,
                    outbox=target is not None,
                )
            if target is not None and events is not None:
                metrics = self.metrics
                self.publisher = MqttPublisher(
                    target,
                    Path(events),
                    site=site,
                    model_version=cascade.model_version,
                    on_connection=None if metrics is None else metrics.set_mqtt,
                )
                assert self.writer is not None
                self.writer.on_commit.append(self.publisher.wake)
            if self.metrics is not None:
                self.metrics.watch_queue(self._queued)
        except BaseException:
            self.close()
            raise
        return self

    def _queued(self) -> float:
        writer, publisher = self.writer, self.publisher
        return float((writer.queued if writer else 0) + (publisher.pending if publisher else 0))

    def set_source(self, name: str) -> None:
        if self.events is not None:
            self.events.source = name

    def recording(self, active: bool) -> None:
        if self.metrics is not None:
            self.metrics.set_recording(active)

    def status(self, event: StatusEvent) -> None:
        """A source's status event (its capture thread): the camera-connected gauge."""
        self.source_running = event.status is SourceStatus.RUNNING
        if self.metrics is not None:
            self.metrics.set_camera(self.source_running)

    def close(self) -> None:
        """The events written first (so the publisher can still send them), then the
        publisher, then the metrics server."""
        if self.writer is not None:
            self.writer.close()
        if self.publisher is not None:
            self.publisher.close()
        if self.metrics is not None:
            self.metrics.close()


def _profile_version(cascade: Cascade) -> str | None:
    head = getattr(cascade, "profile", None)
    return getattr(head, "version", None) or None
