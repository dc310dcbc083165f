"""Simulate a meter: generate a solar or wind profile, sign it, and submit it in batches.

    manage.py simulate_meter --device 1 --meter SRC-PV-0001 --start 2025-06-01 --days 3 \
        --key-file .dev/meter.key --url http://127.0.0.1:8000 --token gp_...
    manage.py simulate_meter --device 1 --meter SRC-PV-0001 --start 2025-06-01 --days 3 \
        --key-file .dev/meter.key --direct
    manage.py simulate_meter --device 1 --meter SRC-PV-0001 --start 2025-06-01 --days 3 \
        --key-file .dev/meter.key --mqtt mqtt://127.0.0.1:1883

With --mqtt the meter publishes each batch (QoS 1) on <MQTT_TOPIC_PREFIX>/<serial>/readings
for the meter gateway (`manage.py mqtt_gateway`) to ingest; nothing is stored by this command.

The key file holds the meter's 32-byte Ed25519 seed, base64 or hex. Readings that would end
in the future are not sent.
"""

import base64
import binascii
import datetime as dt
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import nacl.signing
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import Membership, User
from assets import services, simulator
from assets.canonical import counter_bytes, reading_bytes
from assets.models import Device, Meter, MeterKey
from assets.readings_io import iter_mapping_rows
from registry.errors import DomainError


def load_signing_key(path: str) -> nacl.signing.SigningKey:
    """An Ed25519 signing key from a file holding its 32-byte seed (base64 or hex)."""
    text = Path(path).read_text().strip()
    try:
        raw = (
            bytes.fromhex(text) if len(text) in (64, 128) else base64.b64decode(text, validate=True)
        )
    except (ValueError, binascii.Error):
        raise CommandError(f"{path}: not base64 or hex") from None
    if len(raw) == 64:
        raw = raw[:32]  # libsodium secret key: seed followed by the public key
    if len(raw) != 32:
        raise CommandError(f"{path}: expected a 32-byte Ed25519 seed")
    return nacl.signing.SigningKey(raw)


def post_json(url: str, token: str, rows: list[dict]) -> tuple[int, dict]:
    """POST a JSON array; return (HTTP status, decoded body)."""
    request = urllib.request.Request(  # noqa: S310 - the operator gives the URL
        url,
        data=json.dumps(rows).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body)
        except ValueError:
            return exc.code, {"detail": body.decode(errors="replace")[:500]}


def _parse_start(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--start {value!r}: give a date (2025-06-01) or a time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


class Command(BaseCommand):
    help = "Generate, sign and submit a realistic solar or wind meter profile."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--device", type=int, required=True)
        parser.add_argument("--meter", required=True, help="Meter serial.")
        parser.add_argument("--start", required=True, help="UTC date or time of the first reading.")
        parser.add_argument("--days", type=int, required=True)
        parser.add_argument("--key-file", help="The meter's Ed25519 seed; unsigned without it.")
        parser.add_argument("--url", help="Registry base URL, e.g. http://127.0.0.1:8000.")
        parser.add_argument("--token", help="API token (with --url).")
        parser.add_argument("--direct", action="store_true", help="Call the service in-process.")
        parser.add_argument(
            "--mqtt", help="Publish to this MQTT broker, e.g. mqtt://127.0.0.1:1883."
        )
        parser.add_argument("--user", help="Acting username with --direct (default: a member).")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument(
            "--seed", type=int, default=None, help="Profile seed (default: device)."
        )
        parser.add_argument("--counter", action="store_true", help="Send cumulative counters.")
        parser.add_argument("--counter-start", type=int, default=0)

    def handle(self, *args, **opts) -> None:
        if sum(bool(opts[name]) for name in ("direct", "url", "mqtt")) != 1:
            raise CommandError("Give one of --url (with --token), --direct or --mqtt.")
        if opts["url"] and not opts["token"]:
            raise CommandError("--url needs --token.")
        device = Device.objects.filter(pk=opts["device"]).first()
        if device is None:
            raise CommandError(f"No device {opts['device']}.")
        meter = Meter.objects.filter(serial=opts["meter"], device=device).first()
        if meter is None:
            raise CommandError(f"Device {device.pk} has no meter {opts['meter']!r}.")
        key = load_signing_key(opts["key_file"]) if opts["key_file"] else None
        if key is not None:
            public = base64.b64encode(bytes(key.verify_key)).decode()
            if not MeterKey.objects.filter(meter=meter, public_key=public).exists():
                self.stderr.write(
                    "Warning: the key file's public key is not registered for "
                    f"meter {meter.serial}; signatures will not verify."
                )
        rows = self._rows(device, meter, key, opts)
        if not rows:
            self.stdout.write("No complete intervals before now; nothing to send.")
            return
        size = max(1, opts["batch_size"])
        batches = [rows[i : i + size] for i in range(0, len(rows), size)]
        if opts["mqtt"]:
            self._publish(meter, batches, opts["mqtt"])
            return
        send = self._direct(device, opts) if opts["direct"] else self._http(device, opts)
        total = 0
        for batch in batches:
            total += send(batch)
        self.stdout.write(
            f"Sent {len(rows)} {'counter' if opts['counter'] else 'interval'} readings of "
            f"{meter.serial} in {len(batches)} batch(es); {total} stored."
        )

    def _rows(self, device: Device, meter: Meter, key, opts) -> list[dict]:
        now = timezone.now()
        profile = simulator.profile_for(
            technology_code=device.technology_code,
            capacity_w=device.capacity_w,
            latitude=float(device.latitude),
            longitude=float(device.longitude),
            start=_parse_start(opts["start"]),
            days=opts["days"],
            interval_minutes=device.interval_minutes,
            seed=device.pk if opts["seed"] is None else opts["seed"],
        )
        rows: list[dict] = []
        counter = opts["counter_start"]
        for item in profile:
            if item.end > now:
                break
            if opts["counter"]:
                if not rows:
                    rows.append(self._counter(meter, item.start, counter, key))
                counter += item.wh
                rows.append(self._counter(meter, item.end, counter, key))
            else:
                row = {
                    "meter": meter.serial,
                    "start": item.start.isoformat(),
                    "end": item.end.isoformat(),
                    "wh": item.wh,
                }
                if key is not None:
                    data = reading_bytes(meter.serial, item.start, item.end, item.wh)
                    row["signature"] = base64.b64encode(key.sign(data).signature).decode()
                rows.append(row)
        return rows

    @staticmethod
    def _counter(meter: Meter, time: dt.datetime, value: int, key) -> dict:
        row = {"meter": meter.serial, "time": time.isoformat(), "counter_wh": value}
        if key is not None:
            data = counter_bytes(meter.serial, time, value)
            row["signature"] = base64.b64encode(key.sign(data).signature).decode()
        return row

    def _publish(self, meter: Meter, batches: list[list[dict]], broker: str) -> None:
        import paho.mqtt.client as mqtt
        from django.conf import settings

        parsed = urllib.parse.urlparse(broker if "://" in broker else f"mqtt://{broker}")
        topic = f"{settings.MQTT_TOPIC_PREFIX.rstrip('/')}/{meter.serial}/readings"
        client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
        try:
            client.connect(parsed.hostname or "127.0.0.1", parsed.port or 1883)
        except OSError as exc:
            raise CommandError(f"cannot reach the MQTT broker {broker}: {exc}") from None
        client.loop_start()
        try:
            for batch in batches:
                client.publish(topic, json.dumps(batch), qos=1).wait_for_publish(30)
        finally:
            client.loop_stop()
            client.disconnect()
        rows = sum(len(batch) for batch in batches)
        self.stdout.write(f"Published {rows} readings in {len(batches)} message(s) on {topic}.")

    def _direct(self, device: Device, opts):
        if opts["user"]:
            user = User.objects.filter(username=opts["user"]).first()
        else:
            membership = (
                Membership.objects.filter(
                    organisation=device.organisation,
                    role__in=[Membership.Role.ADMIN, Membership.Role.OPERATOR],
                )
                .select_related("user")
                .order_by("id")
                .first()
            )
            user = membership.user if membership else None
        if user is None:
            raise CommandError("No acting user: give --user.")

        def send(rows: list[dict]) -> int:
            try:
                result = services.readings_submit(
                    actor=user, rows=iter_mapping_rows(rows), device_id=device.pk
                )
            except DomainError as exc:
                raise CommandError(f"{exc.code}: {exc.detail} {exc.extra}") from None
            self.stdout.write(
                f"  {result.status}: {result.stored} stored, {result.duplicates} duplicates"
            )
            return result.stored

        return send

    def _http(self, device: Device, opts):
        url = opts["url"].rstrip("/") + f"/api/v1/readings/?device={device.pk}"

        def send(rows: list[dict]) -> int:
            status, body = post_json(url, opts["token"], rows)
            if status >= 400:
                raise CommandError(f"HTTP {status}: {json.dumps(body)[:2000]}")
            self.stdout.write(
                f"  HTTP {status} {body.get('status')}: {body.get('stored')} stored, "
                f"{body.get('duplicates')} duplicates"
            )
            return int(body.get("stored") or 0)

        return send
