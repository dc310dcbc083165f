"""The meter simulator: profile shapes, and the simulate_meter command."""

import base64
import datetime as dt
import io
import itertools
import statistics

import pytest
from django.core.management import CommandError, call_command

from assets import simulator
from assets.management.commands import simulate_meter
from assets.models import Device, Reading
from tests.assets.factories import DeviceFactory, MeterFactory, add_key, signing_key
from tests.conftest import client_for

UTC = dt.UTC
BERLIN = {"latitude": 52.52, "longitude": 13.40}


def solar(start, days=1, capacity=100_000, minutes=60, seed=1, **where):
    return list(
        simulator.solar_profile(
            capacity_w=capacity,
            start=start,
            days=days,
            interval_minutes=minutes,
            seed=seed,
            **(where or BERLIN),
        )
    )


def test_solar_is_zero_at_night_and_never_above_capacity():
    for month in range(1, 13):
        for seed in range(3):
            for item in solar(dt.datetime(2025, month, 10, tzinfo=UTC), seed=seed):
                elevation = simulator.sun_elevation(
                    52.52, 13.40, item.start + (item.end - item.start) / 2
                )
                if (
                    simulator.sun_elevation(52.52, 13.40, item.start) < -1
                    and simulator.sun_elevation(52.52, 13.40, item.end) < -1
                ):
                    assert item.wh == 0, (item, elevation)
                assert 0 <= item.wh <= 100_000


def test_solar_midnight_and_noon():
    day = solar(dt.datetime(2025, 6, 21, tzinfo=UTC), seed=3)
    assert day[0].wh == day[1].wh == day[22].wh == day[23].wh == 0  # UTC night in Berlin
    assert max(day, key=lambda i: i.wh).start.hour in range(9, 14)  # solar noon ~11:10 UTC


def test_solar_summer_beats_winter():
    summer = sum(i.wh for i in solar(dt.datetime(2025, 6, 1, tzinfo=UTC), days=30))
    winter = sum(i.wh for i in solar(dt.datetime(2025, 12, 1, tzinfo=UTC), days=30))
    assert summer > 3 * winter > 0


def test_solar_daylight_follows_latitude_and_season():
    def daylight_hours(start, latitude):
        return sum(1 for i in solar(start, latitude=latitude, longitude=0.0) if i.wh > 0)

    june, december = dt.datetime(2025, 6, 21, tzinfo=UTC), dt.datetime(2025, 12, 21, tzinfo=UTC)
    assert daylight_hours(june, 60.0) > daylight_hours(june, 0.0) > daylight_hours(december, 60.0)
    assert simulator.sun_elevation(0.0, 0.0, dt.datetime(2025, 3, 20, 12, 7, tzinfo=UTC)) > 88


def test_quarter_hour_profile_is_capped_per_interval():
    items = solar(dt.datetime(2025, 7, 1, tzinfo=UTC), minutes=15, capacity=4_000)
    assert len(items) == 96 and all(0 <= i.wh <= 1_000 for i in items)


def test_wind_never_above_capacity_and_persistent():
    items = list(
        simulator.wind_profile(
            capacity_w=3_600_000, start=dt.datetime(2025, 1, 1, tzinfo=UTC), days=60, seed=5
        )
    )
    values = [i.wh for i in items]
    assert all(0 <= v <= 3_600_000 for v in values)
    assert 0.15 < statistics.mean(values) / 3_600_000 < 0.6  # a plausible capacity factor
    mean = statistics.mean(values)
    lag1 = sum((a - mean) * (b - mean) for a, b in itertools.pairwise(values))
    assert lag1 / sum((v - mean) ** 2 for v in values) > 0.6  # hour to hour persistence
    assert any(v == 0 for v in values) and any(v > 3_000_000 for v in values)


def test_profiles_are_deterministic_by_seed():
    start = dt.datetime(2025, 5, 1, tzinfo=UTC)
    assert solar(start, seed=9) == solar(start, seed=9) != solar(start, seed=10)


def test_power_curve():
    assert simulator.turbine_power_fraction(2.9) == 0
    assert simulator.turbine_power_fraction(12) == 1 == simulator.turbine_power_fraction(24.9)
    assert simulator.turbine_power_fraction(25) == 0
    assert 0 < simulator.turbine_power_fraction(8) < 1


# -- the command -------------------------------------------------------------------------------


@pytest.fixture
def pv(producer_org, producer):
    device = DeviceFactory(organisation=producer_org, require_signed_readings=True)
    meter = MeterFactory(device=device, serial="SIM-PV-1")
    key = signing_key(21)
    add_key(meter, key)
    return device, meter, key


@pytest.fixture
def key_file(tmp_path, pv):
    path = tmp_path / "meter.key"
    path.write_text(base64.b64encode(bytes(pv[2])).decode())
    return path


def start_days_ago(days: int) -> str:
    return (dt.datetime.now(UTC).date() - dt.timedelta(days=days)).isoformat()


def test_direct_mode_signs_and_stores(pv, key_file, producer):
    device, meter, _key = pv
    out = io.StringIO()
    call_command(
        "simulate_meter", "--device", str(device.pk), "--meter", meter.serial, "--start",
        start_days_ago(2), "--days", "2", "--key-file", str(key_file), "--direct",
        "--batch-size", "20", stdout=out,
    )  # fmt: skip
    assert Reading.objects.filter(meter=meter).count() == 48
    assert Reading.objects.filter(meter=meter, is_signed=False).count() == 0
    assert "48 interval readings" in out.getvalue()


def test_direct_mode_counters(pv, key_file, producer):
    device, meter, _key = pv
    call_command(
        "simulate_meter", "--device", str(device.pk), "--meter", meter.serial, "--start",
        start_days_ago(1), "--days", "1", "--key-file", str(key_file), "--direct", "--counter",
        "--counter-start", "5000000", stdout=io.StringIO(),
    )  # fmt: skip
    meter.refresh_from_db()
    assert Reading.objects.filter(meter=meter).count() == 24
    total = sum(Reading.objects.filter(meter=meter).values_list("wh", flat=True))
    assert meter.counter_wh == 5_000_000 + total


def test_url_mode_posts_through_the_api(pv, key_file, producer, monkeypatch):
    device, meter, _key = pv
    client = client_for(producer)
    calls = []

    def fake_post(url, token, rows):
        calls.append((url, token, len(rows)))
        response = client.post(url.split("8000", 1)[1], rows, format="json")
        return response.status_code, response.json()

    monkeypatch.setattr(simulate_meter, "post_json", fake_post)
    call_command(
        "simulate_meter", "--device", str(device.pk), "--meter", meter.serial, "--start",
        start_days_ago(1), "--days", "1", "--key-file", str(key_file), "--url",
        "http://127.0.0.1:8000", "--token", "gp_x", "--batch-size", "10", stdout=io.StringIO(),
    )  # fmt: skip
    assert [c[2] for c in calls] == [10, 10, 4]
    assert calls[0][0] == f"http://127.0.0.1:8000/api/v1/readings/?device={device.pk}"
    assert Reading.objects.filter(meter=meter).count() == 24


def test_http_errors_stop_the_command(pv, producer, monkeypatch):
    device, meter, _key = pv
    monkeypatch.setattr(
        simulate_meter, "post_json", lambda *a: (400, {"code": "readings_rejected"})
    )
    with pytest.raises(CommandError, match="HTTP 400"):
        call_command(
            "simulate_meter", "--device", str(device.pk), "--meter", meter.serial, "--start",
            start_days_ago(1), "--days", "1", "--url", "http://x", "--token", "t",
            stdout=io.StringIO(), stderr=io.StringIO(),
        )  # fmt: skip


@pytest.mark.parametrize(
    "extra",
    [
        [],  # neither --url nor --direct
        ["--direct", "--url", "http://x"],
        ["--url", "http://x"],  # no token
    ],
)
def test_command_arguments(pv, extra):
    device, meter, _key = pv
    with pytest.raises(CommandError):
        call_command(
            "simulate_meter", "--device", str(device.pk), "--meter", meter.serial, "--start",
            "2025-01-01", "--days", "1", *extra, stdout=io.StringIO(),
        )  # fmt: skip


def test_unsigned_direct_run_refused_by_policy(pv, producer):
    device, meter, _key = pv
    with pytest.raises(CommandError, match=r"signature_required|readings_rejected"):
        call_command(
            "simulate_meter", "--device", str(device.pk), "--meter", meter.serial, "--start",
            start_days_ago(1), "--days", "1", "--direct", stdout=io.StringIO(),
        )  # fmt: skip
    assert Device.objects.get(pk=device.pk).readings.count() == 0
