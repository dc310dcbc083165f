"""Permission matrix rows for the assets endpoints (see tests/registry/matrix.py).

Producers act on their own organisation's devices, the issuing body approves and
reviews, auditors read everything and change nothing, and everyone (signed in or not)
reads grid areas and approved/active devices' public data. Meters, readings and batches
are visible only to the device's organisations, the issuing body and auditors.

The world (all the producer's): an active device with a keyed meter holding accepted
readings and a held batch, a second meter without readings, and devices in draft,
submitted, approved and suspended states.
"""

from assets import services
from assets.models import Device
from assets.readings_io import iter_mapping_rows
from tests.assets.factories import (
    DeviceFactory,
    GridAreaFactory,
    MeterFactory,
    add_key,
    hours_ago,
    interval_row,
    new_eic,
    public_key_b64,
    signing_key,
)
from tests.factories import AccountFactory
from tests.registry.matrix import Case, expect

KEY = signing_key(31)
PRODUCER = ("producer_admin", "producer_operator", "producer_viewer")


def setup_world(world) -> None:
    producer = world.orgs["producer"]
    status = Device.Status
    world.grid_area = GridAreaFactory()
    world.device_account = AccountFactory(organisation=producer)
    world.device = DeviceFactory(organisation=producer, grid_area=world.grid_area)
    world.draft = DeviceFactory(organisation=producer, status=status.DRAFT)
    world.submitted = DeviceFactory(organisation=producer, status=status.SUBMITTED)
    world.approved = DeviceFactory(organisation=producer, status=status.APPROVED)
    world.suspended_device = DeviceFactory(organisation=producer, status=status.SUSPENDED)
    world.meter = MeterFactory(device=world.device, serial="MATRIX-0001")
    add_key(world.meter, KEY)
    world.spare_meter = MeterFactory(device=world.device, serial="MATRIX-0002")
    admin = world.users["producer_admin"]
    accepted = services.readings_submit(
        actor=admin,
        rows=iter_mapping_rows(
            [interval_row(world.meter, hours_ago(h), 1000, key=KEY) for h in range(10, 5, -1)]
        ),
    )
    assert accepted.status == "accepted", accepted.errors
    world.reading = accepted.batch.readings.order_by("pk").first()
    rows = [interval_row(world.meter, hours_ago(h), 1000, key=KEY) for h in range(5, 0, -1)]
    rows[2] = interval_row(world.meter, hours_ago(3), 500_000, key=KEY)
    held = services.readings_submit(actor=admin, rows=iter_mapping_rows(rows))
    assert held.status == "held", held.errors
    world.held_batch = held.batch


def _pk(name: str):
    return lambda world: {"pk": getattr(world, name).pk}


def _serial(name: str):
    return lambda world: {"serial": getattr(world, name).serial}


def _reason(world, role) -> dict:
    return {"reason": "matrix"}


def full(default: int, **statuses: int) -> dict[str, int]:
    """Readers of a device's private data (its organisation, the issuing body, auditors)."""
    readers = dict.fromkeys(PRODUCER, 200) | {"issuing_body": 200, "auditor": 200}
    return expect(default, **(readers | statuses))


# A private object (not approved/active, or a meter/reading/batch) is 404 for those who
# cannot see it; a write on it by a reader without the right is 403.
def private_write(ok: int, *, writers=("producer_admin", "producer_operator"), **extra) -> dict:
    readers = dict.fromkeys(PRODUCER, 403) | {"issuing_body": 403, "auditor": 403}
    return expect(404, anonymous=401, **(readers | dict.fromkeys(writers, ok) | extra))


def public_write(ok: int, writers=("producer_admin", "producer_operator")) -> dict:
    return expect(403, anonymous=401, **dict.fromkeys(writers, ok))


OPERATORS_OR_IB = ("producer_admin", "producer_operator", "issuing_body")

CASES = [
    # -- grid areas and codes: public; the issuing body writes
    Case("GET", "/api/v1/grid-areas/", expect(200)),
    Case(
        "POST",
        "/api/v1/grid-areas/",
        expect(403, anonymous=401, issuing_body=201),
        body=lambda w, role: {
            "code": new_eic(),
            "name": "Matrix zone",
            "country": "DE",
            "time_zone": "Europe/Berlin",
            "emission_factor_g_per_kwh": "380.000",
        },
        codes={"producer_admin": "not_issuing_body", "auditor": "not_issuing_body"},
    ),
    Case("GET", "/api/v1/grid-areas/{pk}/", expect(200), args=_pk("grid_area")),
    Case(
        "PATCH",
        "/api/v1/grid-areas/{pk}/",
        expect(403, anonymous=401, issuing_body=200),
        args=_pk("grid_area"),
        body=lambda w, role: {"name": "Renamed zone"},
        codes={"producer_admin": "not_issuing_body", "auditor": "not_issuing_body"},
    ),
    Case("GET", "/api/v1/eecs-codes/", expect(200)),
    # -- devices
    Case("GET", "/api/v1/devices/", expect(200)),
    Case(
        "POST",
        "/api/v1/devices/onboard/",
        expect(403, anonymous=401, issuing_body=200),
        body=lambda w, role: {
            "dry_run": False,
            "csv": "organisation_id,account_number,name,grid_area,technology_code,"
            "energy_source_code,capacity_kw,commissioning_date,latitude,longitude,meter_serial\n"
            f"{w.orgs['producer'].pk},{w.device_account.number},Matrix CSV PV,{w.grid_area.code},"
            "T010101,F01040100,50,2021-06-01,52.52,13.40,MATRIX-CSV-1\n",
        },
        codes={"producer_admin": "not_issuing_body", "auditor": "not_issuing_body"},
        events=2,
    ),
    Case(
        "POST",
        "/api/v1/devices/",
        public_write(201),
        name="for the producer",
        body=lambda w, role: {
            "organisation": w.orgs["producer"].pk,
            "name": "Matrix PV",
            "grid_area": w.grid_area.pk,
            "technology_code": "T010101",
            "energy_source_code": "F01040100",
            "capacity_w": 50_000,
            "commissioning_date": "2021-06-01",
            "latitude": "52.520000",
            "longitude": "13.400000",
            "owners": [
                {
                    "organisation": w.orgs["producer"].pk,
                    "account": w.device_account.pk,
                    "share": "1",
                }
            ],
        },
    ),
    Case("GET", "/api/v1/devices/{pk}/", expect(200), name="active (public)", args=_pk("device")),
    Case(
        "GET",
        "/api/v1/devices/{pk}/",
        full(404),
        name="draft (private)",
        args=_pk("draft"),
    ),
    Case(
        "PATCH",
        "/api/v1/devices/{pk}/",
        private_write(200),
        name="draft",
        args=_pk("draft"),
        body=lambda w, role: {"name": "Renamed PV"},
    ),
    Case(
        "PUT",
        "/api/v1/devices/{pk}/owners/",
        private_write(200),
        name="draft",
        args=_pk("draft"),
        body=lambda w, role: {
            "owners": [
                {
                    "organisation": w.orgs["producer"].pk,
                    "account": w.device_account.pk,
                    "share": "1",
                }
            ]
        },
    ),
    Case(
        "POST",
        "/api/v1/devices/{pk}/policy/",
        public_write(200, writers=("issuing_body",)),
        name="active",
        args=_pk("device"),
        body=lambda w, role: {"require_signed_readings": True, "reason": "matrix"},
        codes={"producer_admin": "not_issuing_body", "auditor": "not_issuing_body"},
    ),
    Case(
        "POST",
        "/api/v1/devices/{pk}/submit/",
        private_write(200),
        name="draft",
        args=_pk("draft"),
        body=_reason,
    ),
    Case(
        "POST",
        "/api/v1/devices/{pk}/approve/",
        private_write(200, writers=("issuing_body",)),
        name="submitted",
        args=_pk("submitted"),
        body=_reason,
    ),
    Case(
        "POST",
        "/api/v1/devices/{pk}/reject/",
        private_write(200, writers=("issuing_body",)),
        name="submitted",
        args=_pk("submitted"),
        body=_reason,
    ),
    Case(
        "POST",
        "/api/v1/devices/{pk}/activate/",
        public_write(200, writers=OPERATORS_OR_IB),
        name="approved",
        args=_pk("approved"),
        body=_reason,
    ),
    Case(
        "POST",
        "/api/v1/devices/{pk}/suspend/",
        public_write(200, writers=("issuing_body",)),
        name="active",
        args=_pk("device"),
        body=_reason,
    ),
    Case(
        "POST",
        "/api/v1/devices/{pk}/reinstate/",
        private_write(200, writers=("issuing_body",)),
        name="suspended",
        args=_pk("suspended_device"),
        body=_reason,
    ),
    Case(
        "POST",
        "/api/v1/devices/{pk}/decommission/",
        public_write(200, writers=OPERATORS_OR_IB),
        name="active",
        args=_pk("device"),
        body=_reason,
    ),
    # -- meters: signed-in only, scoped to the device's readers
    Case("GET", "/api/v1/meters/", expect(200, anonymous=401)),
    Case(
        "POST",
        "/api/v1/meters/",
        public_write(201),
        name="on the active device",
        body=lambda w, role: {
            "device": w.device.pk,
            "serial": "MATRIX-NEW",
            "public_key": public_key_b64(signing_key(32)),
        },
    ),
    Case("GET", "/api/v1/meters/{serial}/", full(404, anonymous=401), args=_serial("meter")),
    Case("GET", "/api/v1/meters/{serial}/keys/", full(404, anonymous=401), args=_serial("meter")),
    Case(
        "POST",
        "/api/v1/meters/{serial}/keys/",
        private_write(201, writers=OPERATORS_OR_IB),
        args=_serial("meter"),
        body=lambda w, role: {"public_key": public_key_b64(signing_key(33))},
    ),
    Case(
        "POST",
        "/api/v1/meters/{serial}/counter-resets/",
        private_write(200, writers=OPERATORS_OR_IB),
        args=_serial("spare_meter"),
        body=lambda w, role: {
            "time": hours_ago(2).isoformat(),
            "counter_wh": 0,
            "reason": "matrix",
        },
    ),
    Case(
        "POST",
        "/api/v1/meters/{serial}/replacements/",
        private_write(201, writers=OPERATORS_OR_IB),
        args=_serial("spare_meter"),
        body=lambda w, role: {
            "time": hours_ago(1).isoformat(),
            "new_serial": "MATRIX-REPL",
            "reason": "matrix",
        },
    ),
    Case(
        "POST",
        "/api/v1/meters/{serial}/remove/",
        private_write(200, writers=OPERATORS_OR_IB),
        args=_serial("spare_meter"),
        body=lambda w, role: {"time": hours_ago(1).isoformat(), "reason": "matrix"},
    ),
    # -- readings and batches
    Case("GET", "/api/v1/readings/", expect(200, anonymous=401)),
    Case(
        "POST",
        "/api/v1/readings/",
        # Roles that never submit readings (no producer membership as operator or admin)
        # get a 403 before any row is read; another producer's operator would be refused
        # per row (unknown_meter, 400), which tests/assets covers.
        expect(403, anonymous=401, producer_admin=201, producer_operator=201),
        name="a signed reading of the producer's meter",
        body=lambda w, role: [interval_row(w.meter, hours_ago(20), 1000, key=KEY)],
        codes={
            "other_admin": "not_reading_submitter",
            "producer_viewer": "not_reading_submitter",
            "auditor": "not_reading_submitter",
        },
    ),
    Case("GET", "/api/v1/readings/{pk}/", full(404, anonymous=401), args=_pk("reading")),
    Case("GET", "/api/v1/readings/{pk}/proof/", full(404, anonymous=401), args=_pk("reading")),
    Case("GET", "/api/v1/reading-batches/", expect(200, anonymous=401)),
    Case(
        "GET",
        "/api/v1/reading-batches/{pk}/",
        full(404, anonymous=401),
        name="held",
        args=_pk("held_batch"),
    ),
    Case(
        "POST",
        "/api/v1/reading-batches/{pk}/accept/",
        private_write(200, writers=("issuing_body",)),
        name="held",
        args=_pk("held_batch"),
        body=_reason,
    ),
    Case(
        "POST",
        "/api/v1/reading-batches/{pk}/reject/",
        private_write(200, writers=("issuing_body",)),
        name="held",
        args=_pk("held_batch"),
        body=_reason,
    ),
]
