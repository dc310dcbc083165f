"""The MQTT meter gateway against the local Mosquitto (skipped when no broker answers)."""

import base64
import datetime as dt
import io
import json
import socket
import uuid

import paho.mqtt.client as mqtt
import pytest
from django.core.management import call_command

from assets.models import Reading
from consumers.gateway import MeterGateway
from consumers.models import GatewayDeadLetter
from consumers.services.gateway import gateway_message_ingest
from tests.assets.factories import add_key, hours_ago, interval_row, signing_key
from tests.consumers.factories import SiteFactory, site_meter

BROKER = ("127.0.0.1", 1883)


def _broker_up() -> bool:
    try:
        with socket.create_connection(BROKER, timeout=1):
            return True
    except OSError:
        return False


requires_broker = pytest.mark.skipif(
    not _broker_up(), reason="no MQTT broker on 127.0.0.1:1883 (.ci/run starts mosquitto)"
)


@pytest.fixture
def signed_meter():
    site = SiteFactory()
    link = site_meter(site)
    key = signing_key(11)
    add_key(link.meter, key)
    return link.meter, key


def _publish(messages: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
    client.connect(*BROKER)
    client.loop_start()
    for topic, payload in messages:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


@pytest.mark.django_db
def test_bad_messages_become_dead_letters_and_good_ones_readings(signed_meter):
    # given
    meter, key = signed_meter
    prefix = "t/meters"
    good = json.dumps([interval_row(meter, hours_ago(3), 420, key=key)]).encode()
    forged = json.dumps([interval_row(meter, hours_ago(2), 999, key=signing_key(99))]).encode()
    unsigned = json.dumps([interval_row(meter, hours_ago(2), 10)]).encode()
    cases = [
        (f"{prefix}/{meter.serial}/readings", good, "accepted"),
        (f"{prefix}/{meter.serial}/readings", good, "unchanged"),  # re-delivered
        (f"{prefix}/{meter.serial}/readings", forged, "dead_letter"),
        (f"{prefix}/{meter.serial}/readings", unsigned, "dead_letter"),
        (f"{prefix}/OTHER-1/readings", good, "dead_letter"),
        (f"{prefix}/{meter.serial}/status", good, "dead_letter"),
        (f"{prefix}/{meter.serial}/readings", b"\xff not json", "dead_letter"),
    ]

    # when
    outcomes = [
        gateway_message_ingest(topic=topic, payload=payload, prefix=prefix)
        for topic, payload, _ in cases
    ]

    # then
    assert [o.status for o in outcomes] == [expected for *_, expected in cases]
    assert [o.reason for o in outcomes if o.reason] == [
        "readings_rejected",
        "unsigned",
        "wrong_topic",
        "wrong_topic",
        "garbage",
    ]
    assert Reading.objects.filter(meter=meter).count() == 1
    assert GatewayDeadLetter.objects.count() == 5


@requires_broker
@pytest.mark.django_db
def test_the_gateway_ingests_through_the_broker_and_keeps_running(signed_meter):
    # given a gateway subscribed under a prefix of its own
    meter, key = signed_meter
    prefix = f"gridproof-test/{uuid.uuid4().hex}"
    gateway = MeterGateway(
        broker_url="mqtt://127.0.0.1:1883", prefix=prefix, client_id=f"gw-{uuid.uuid4().hex}"
    )
    gateway.start()
    rows = [interval_row(meter, hours_ago(h), 100 + h, key=key) for h in (6, 5, 4)]
    topic = f"{prefix}/{meter.serial}/readings"

    # when a meter publishes readings, garbage, and the same readings again
    try:
        _publish(
            [
                (topic, json.dumps(rows).encode()),
                (topic, b"garbage"),
                (f"{prefix}/{meter.serial}/readings/extra", b"[]"),
                (topic, json.dumps(rows[:1]).encode()),
            ]
        )
        gateway.run(max_messages=4, idle_exit=10)
    finally:
        gateway.stop()

    # then the readings are stored once and the bad messages are dead letters
    assert Reading.objects.filter(meter=meter).count() == 3
    assert gateway.stats.received == 4 and gateway.stats.duplicates == 1
    assert gateway.stats.reasons == {"garbage": 1, "wrong_topic": 1}


@requires_broker
@pytest.mark.django_db
def test_the_simulated_meter_reports_over_mqtt_without_an_upload(signed_meter, tmp_path, settings):
    # given a gateway and the simulator publishing a day of the meter's signed readings
    meter, key = signed_meter
    settings.MQTT_TOPIC_PREFIX = f"gridproof-test/{uuid.uuid4().hex}"
    key_file = tmp_path / "meter.key"
    key_file.write_text(base64.b64encode(bytes(key)).decode())
    gateway = MeterGateway(
        broker_url="mqtt://127.0.0.1:1883",
        prefix=settings.MQTT_TOPIC_PREFIX,
        client_id=f"gw-{uuid.uuid4().hex}",
    )
    gateway.start()
    start = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)).isoformat()

    # when
    try:
        call_command(
            "simulate_meter", "--device", str(meter.device_id), "--meter", meter.serial,
            "--start", start, "--days", "1", "--key-file", str(key_file),
            "--mqtt", "mqtt://127.0.0.1:1883", "--batch-size", "6", stdout=io.StringIO(),
        )  # fmt: skip
        gateway.run(max_messages=4, idle_exit=10)
    finally:
        gateway.stop()

    # then the readings arrived through the broker, signed
    assert Reading.objects.filter(meter=meter, is_signed=True).count() == 24
    assert gateway.stats.dead_letters == 0
