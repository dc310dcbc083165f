"""The MQTT meter gateway process: subscribe, ingest each message, acknowledge after.

At-least-once: the gateway keeps a persistent session (clean_session off, QoS 1) and
acknowledges a message only after it was stored or dead-lettered, so a crash in between
means the broker delivers it again, and the readings pipeline makes the second delivery
change nothing. Back-pressure: paho's network thread hands messages to a bounded queue; when
the database falls behind, the queue fills, the network thread waits, and the broker stops
sending once its in-flight window of unacknowledged messages is full. Database outages do
not lose messages: the message stays unacknowledged and is retried.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from django.db import InterfaceError, OperationalError, close_old_connections

from consumers.services.gateway import (
    GatewayOutcome,
    gateway_dead_letter_record,
    gateway_message_ingest,
)

log = logging.getLogger(__name__)


@dataclass
class GatewayStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def broker_address(url: str) -> tuple[str, int]:
    parsed = urlparse(url if "://" in url else f"mqtt://{url}")
    if parsed.scheme not in ("mqtt", "tcp"):
        raise ValueError(f"unsupported broker URL {url!r} (mqtt://host:port)")
    return parsed.hostname or "127.0.0.1", parsed.port or 1883


class MeterGateway:
    """One subscriber; `run` ingests in the calling thread (the one holding the database)."""

    def __init__(
        self, *, broker_url: str, prefix: str, client_id: str, queue_size: int = 200
    ) -> None:
        self.host, self.port = broker_address(broker_url)
        self.prefix = prefix.rstrip("/")
        self.inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue(maxsize=max(1, queue_size))
        self.stats = GatewayStats()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            manual_ack=True,
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)

    # paho's network thread ------------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT connect refused: %s", reason_code)
            return
        # The whole prefix, not just <serial>/readings: wrong topics are dead-lettered too.
        client.subscribe(f"{self.prefix}/#", qos=1)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self.subscribed.set()

    def _on_message(self, client, userdata, message) -> None:
        self.inbox.put(message)  # blocks when full: back-pressure on the broker

    # the ingesting thread --------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self.subscribed.wait(timeout):
            self.stop()
            raise ConnectionError(f"no subscription on {self.host}:{self.port} in {timeout} s")

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def handle(self, message: mqtt.MQTTMessage) -> GatewayOutcome | None:
        """Ingest one message and acknowledge it; None (unacknowledged) if the database is
        unreachable after a few tries, so the broker delivers it again."""
        for attempt in range(3):
            try:
                outcome = gateway_message_ingest(
                    topic=message.topic, payload=bytes(message.payload), prefix=self.prefix
                )
                break
            except (OperationalError, InterfaceError):
                log.exception("database unavailable; retrying message %s", message.mid)
                close_old_connections()
                time.sleep(0.5 * (attempt + 1))
        else:
            return None
        self.client.ack(message.mid, message.qos)
        stats = self.stats
        stats.received += 1
        stats.stored += outcome.stored
        stats.duplicates += outcome.duplicates
        if outcome.status == "dead_letter":
            stats.dead_letters += 1
            stats.reasons[outcome.reason] = stats.reasons.get(outcome.reason, 0) + 1
        return outcome

    def run(self, *, max_messages: int | None = None, idle_exit: float | None = None) -> None:
        """Ingest until stopped (or `max_messages`, or `idle_exit` seconds without one)."""
        handled = 0
        while max_messages is None or handled < max_messages:
            try:
                message = self.inbox.get(timeout=idle_exit if idle_exit else 1.0)
            except queue.Empty:
                if idle_exit:
                    return
                continue
            try:
                self.handle(message)
            except Exception as exc:  # the gateway keeps running whatever one message does
                log.exception("unexpected error on %s", message.topic)
                self._dead_letter_unexpected(message, exc)
            handled += 1

    def _dead_letter_unexpected(self, message: mqtt.MQTTMessage, exc: Exception) -> None:
        try:
            gateway_dead_letter_record(
                topic=message.topic,
                payload=bytes(message.payload),
                reason="internal_error",
                detail=f"{type(exc).__name__}: {exc}",
            )
        except Exception:
            log.exception("could not dead-letter; message %s left unacknowledged", message.mid)
            return
        self.client.ack(message.mid, message.qos)
        self.stats.dead_letters += 1
