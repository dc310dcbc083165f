"""Hourly (24/7) matching: same-hour, same-area certificates against consumption; CO2."""

import datetime as dt

import pytest
from rest_framework.test import APIClient

from assets.models import Reading, ReadingBatch
from certificates.models import Bundle, Issuance
from tests.assets.factories import DeviceFactory, GridAreaFactory
from tests.consumers.factories import SiteFactory, site_meter

HOUR0 = dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)


def _certificate(device, account, hour, wh, unit, status=Bundle.Status.ACTIVE):
    issuance = Issuance.objects.create(
        device=device,
        issued_at=hour,
        granularity="hourly",
        period_start=hour,
        period_end=hour + dt.timedelta(hours=1),
        unit_start=unit,
        unit_end=unit + wh,
        volume_wh=wh,
        device_name=device.name,
        technology_code=device.technology_code,
        energy_source_code=device.energy_source_code,
        grid_area=device.grid_area,
        grid_area_code=device.grid_area.code,
        country="DE",
    )
    return Bundle.objects.create(
        device=device,
        issuance=issuance,
        account=account,
        unit_start=unit,
        unit_end=unit + wh,
        period_start=hour,
        period_end=hour + dt.timedelta(hours=1),
        status=status,
    )


@pytest.mark.django_db
def test_cfe_score_per_hour_and_emissions_location_and_market_based():
    # given consumption of 1,000 Wh in each of two hours
    site = SiteFactory()
    link = site_meter(site)
    batch = ReadingBatch.objects.create(
        organisation=site.household.organisation, status="accepted", size=2, merkle_root="0" * 64
    )
    for i in range(2):
        Reading.objects.create(
            device=link.meter.device,
            meter=link.meter,
            batch=batch,
            index_in_batch=i,
            wh=1000,
            start=HOUR0 + dt.timedelta(hours=i),
            end=HOUR0 + dt.timedelta(hours=i + 1),
        )
    # and certificates: 1,500 Wh for hour 0 (one retired), none for hour 1, and 800 Wh for
    # hour 1 from another grid area (which does not count)
    account = site.household.organisation.accounts.first()
    plant = DeviceFactory(grid_area=site.grid_area)
    _certificate(plant, account, HOUR0, 1000, 0)
    _certificate(plant, account, HOUR0, 500, 1000, status=Bundle.Status.RETIRED)
    elsewhere = DeviceFactory(grid_area=GridAreaFactory())
    _certificate(elsewhere, account, HOUR0 + dt.timedelta(hours=1), 800, 0)
    client = APIClient()
    client.force_authenticate(site.household.person)
    query = {"start": HOUR0.isoformat(), "end": (HOUR0 + dt.timedelta(hours=2)).isoformat()}

    # when
    report = client.get(f"/api/v1/sites/{site.pk}/hourly-matching/", query).json()
    as_csv = client.get(f"/api/v1/sites/{site.pk}/hourly-matching/csv/", query)

    # then the surplus of hour 0 does not cover hour 1
    assert [h["matched_wh"] for h in report["hours"]] == [1000, 0]
    assert [h["cfe_score"] for h in report["hours"]] == ["1.0000", "0.0000"]
    assert report["total"]["cfe_score"] == "0.5000"
    assert report["days"][0]["cfe_score"] == "0.5000" and report["years"][0]["year"] == 2026
    # 2 kWh at 380 g/kWh location-based; 1 kWh unmatched market-based
    assert report["total"]["location_based_g"] == 760
    assert report["total"]["market_based_g"] == 380
    assert report["total"]["avoided_g"] == 380
    assert as_csv.content.decode().splitlines()[1].split(",")[1:4] == ["1000", "1500", "1000"]
