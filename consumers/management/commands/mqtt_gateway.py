"""Run the MQTT meter gateway: `manage.py mqtt_gateway` (off unless MQTT_BROKER_URL is set).

Meters publish signed readings (the JSON rows of POST /api/v1/readings/) on
<MQTT_TOPIC_PREFIX>/<meter serial>/readings with QoS 1; the gateway ingests them through the
readings service and keeps refused messages as dead letters (admin: Gateway dead letters).
"""

import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from consumers.gateway import MeterGateway


class Command(BaseCommand):
    help = "Subscribe to the MQTT broker and ingest meters' signed readings."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--broker", default=None, help="Default: MQTT_BROKER_URL.")
        parser.add_argument("--prefix", default=None, help="Default: MQTT_TOPIC_PREFIX.")
        parser.add_argument("--client-id", default=None, help="Default: MQTT_CLIENT_ID.")
        parser.add_argument("--max-messages", type=int, default=None)
        parser.add_argument("--idle-exit", type=float, default=None, help="Seconds idle.")

    def handle(self, *args, **opts) -> None:
        broker = opts["broker"] or settings.MQTT_BROKER_URL
        if not broker:
            self.stdout.write("MQTT_BROKER_URL is not set: the meter gateway is off.")
            return
        logging.getLogger("consumers.gateway").setLevel(logging.INFO)
        gateway = MeterGateway(
            broker_url=broker,
            prefix=opts["prefix"] or settings.MQTT_TOPIC_PREFIX,
            client_id=opts["client_id"] or settings.MQTT_CLIENT_ID,
            queue_size=settings.MQTT_QUEUE_SIZE,
        )
        try:
            gateway.start()
        except (OSError, ConnectionError) as exc:
            raise CommandError(f"cannot reach the MQTT broker {broker}: {exc}") from None
        self.stdout.write(f"Meter gateway on {broker}, topics {gateway.prefix}/<serial>/readings")
        try:
            gateway.run(max_messages=opts["max_messages"], idle_exit=opts["idle_exit"])
        except KeyboardInterrupt:
            pass
        finally:
            gateway.stop()
        s = gateway.stats
        self.stdout.write(
            f"{s.received} messages: {s.stored} readings stored, {s.duplicates} duplicates, "
            f"{s.dead_letters} dead letters {s.reasons or ''}"
        )
