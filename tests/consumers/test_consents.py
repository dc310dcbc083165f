"""Consents: grant, overlap, expiry, revocation; the one consent check and its access log."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from assets import selectors as selectors_assets
from assets.models import Reading
from consumers import selectors, services
from consumers.models import Consent, DataAccess
from registry.errors import DomainError
from tests.assets.factories import hours_ago
from tests.consumers.factories import SiteFactory, consent, site_meter
from tests.factories import OrganisationFactory, auditor_user, member_of
from tests.registry.support import events_since, last_event_id, row_counts


@pytest.fixture
def world():
    site = SiteFactory()
    link = site_meter(site)
    supplier = OrganisationFactory(is_producer=False, is_trader=True)
    reader = member_of(supplier, "viewer")
    return site, link, supplier, reader


def _grant(site, link, supplier, **kwargs):
    return services.consent_grant(
        actor=site.household.person,
        site_id=site.pk,
        grantee_id=supplier.pk,
        purpose=kwargs.pop("purpose", "supply"),
        site_meter_ids=[link.pk],
        resolution=kwargs.pop("resolution", "hourly"),
        valid_to=kwargs.pop("valid_to", timezone.now() + dt.timedelta(days=30)),
        **kwargs,
    )


@pytest.mark.django_db
def test_grant_records_one_event_without_personal_data(world):
    # given
    site, link, supplier, _reader = world
    before = last_event_id()

    # when
    grant = _grant(site, link, supplier)

    # then
    (event,) = events_since(before)
    assert event["type"] == "consent.granted"
    assert event["data"]["site_meter_ids"] == [link.pk]
    assert f"consent:{grant.pk}" in event["subject"]
    assert site.household.name not in str(event)


@pytest.mark.django_db
def test_overlapping_expired_and_foreign_site_grants_are_refused(world):
    # given an existing grant
    site, link, supplier, _reader = world
    _grant(site, link, supplier)
    counts = row_counts(Consent)

    # when / then: the same grantee and purpose over an overlapping period
    with pytest.raises(DomainError) as exc:
        _grant(site, link, supplier, valid_from=timezone.now() + dt.timedelta(days=5))
    assert exc.value.code == "consent_overlaps"
    # a grant that would already be over
    with pytest.raises(DomainError) as exc:
        _grant(
            site, link, supplier, purpose="advice", valid_from=hours_ago(48), valid_to=hours_ago(24)
        )
    assert exc.value.code == "consent_invalid"
    # a site of another household
    other = SiteFactory()
    with pytest.raises(DomainError) as exc:
        services.consent_grant(
            actor=site.household.person,
            site_id=other.pk,
            grantee_id=supplier.pk,
            purpose="supply",
            site_meter_ids=[link.pk],
            resolution="hourly",
            valid_to=timezone.now() + dt.timedelta(days=3),
        )
    assert exc.value.code == "not_site_household"
    assert row_counts(Consent) == counts


@pytest.mark.django_db
def test_reads_under_a_grant_are_logged_and_refused_after_revocation(world):
    # given a reading and a grant at hourly resolution
    site, link, supplier, reader = world
    start = hours_ago(3)
    Reading.objects.create(
        device=link.meter.device,
        meter=link.meter,
        batch=_batch(site),
        start=start,
        end=start + dt.timedelta(hours=1),
        wh=750,
        index_in_batch=0,
    )
    grant = _grant(site, link, supplier)
    window = {"start": start - dt.timedelta(hours=1), "end": start + dt.timedelta(hours=2)}

    # when the supplier reads
    data = selectors.site_readings_read(user=reader, site_id=site.pk, resolution="daily", **window)

    # then it gets the data and the household sees the read
    assert sum(row["wh"] for row in data["series"]) == 750
    granted = DataAccess.objects.get()
    assert (granted.outcome, granted.consent_id, granted.reader_id) == (
        "granted",
        grant.pk,
        reader.pk,
    )

    # when the household revokes and the supplier reads again
    services.consent_revoke(actor=site.household.person, consent_id=grant.pk)
    with pytest.raises(DomainError) as exc:
        selectors.site_readings_read(user=reader, site_id=site.pk, resolution="daily", **window)

    # then refused, and logged as refused
    assert exc.value.code == "consent_required" and exc.value.status == 403
    refused = DataAccess.objects.order_by("-pk").first()
    assert (refused.outcome, refused.reason) == ("refused", "consent_revoked")
    # and the household's own reads are not logged
    selectors.site_readings_read(
        user=site.household.person, site_id=site.pk, resolution="hourly", **window
    )
    assert DataAccess.objects.count() == 2


@pytest.mark.django_db
def test_a_daily_grant_does_not_allow_hourly_reads(world):
    # given
    site, link, supplier, reader = world
    consent(site, supplier, [link], resolution="daily")
    window = {"start": hours_ago(5), "end": hours_ago(1)}

    # when / then
    with pytest.raises(DomainError) as exc:
        selectors.site_readings_read(user=reader, site_id=site.pk, resolution="hourly", **window)
    assert exc.value.code == "consent_required"
    assert (
        selectors.site_readings_read(user=reader, site_id=site.pk, resolution="monthly", **window)[
            "series"
        ]
        == []
    )


@pytest.mark.django_db
def test_revoking_twice_or_someone_elses_grant_is_refused(world):
    # given
    site, link, supplier, reader = world
    grant = consent(site, supplier, [link])

    # when / then
    with pytest.raises(DomainError) as exc:
        services.consent_revoke(actor=reader, consent_id=grant.pk)
    assert exc.value.code == "consent_not_found"
    before = last_event_id()
    services.consent_revoke(actor=site.household.person, consent_id=grant.pk)
    assert [e["type"] for e in events_since(before)] == ["consent.revoked"]
    with pytest.raises(DomainError) as exc:
        services.consent_revoke(actor=site.household.person, consent_id=grant.pk)
    assert exc.value.code == "consent_revoked"


@pytest.mark.django_db
def test_the_household_exports_all_its_data_as_json_and_csv(world):
    # given a grant and one refused read
    site, link, supplier, reader = world
    consent(site, supplier, [link], resolution="monthly")
    with pytest.raises(DomainError):
        selectors.site_readings_read(
            user=reader, site_id=site.pk, resolution="hourly", start=hours_ago(3), end=hours_ago(1)
        )
    client = APIClient()
    client.force_authenticate(site.household.person)

    # when
    as_json = client.get("/api/v1/households/me/export/")
    as_csv = client.get("/api/v1/households/me/export/csv/")
    accesses = client.get("/api/v1/data-accesses/")

    # then
    body = as_json.json()
    assert body["household"]["name"] == site.household.name
    assert [s["metering_point_id"] for s in body["sites"]] == [site.metering_point_id]
    assert len(body["consents"]) == 1 and body["accesses"][0]["outcome"] == "refused"
    assert as_csv["Content-Type"].startswith("text/csv")
    lines = as_csv.content.decode().splitlines()
    assert lines[0] == "record,data" and any(line.startswith("consent,") for line in lines)
    assert accesses.json()["results"][0]["reader_organisation"] == supplier.pk


def _batch(site):
    from assets.models import ReadingBatch

    return ReadingBatch.objects.create(
        organisation=site.household.organisation, status="accepted", size=1, merkle_root="0" * 64
    )


@pytest.mark.django_db
def test_the_assets_reading_list_hides_household_meters_from_everyone_but_the_household(world):
    # given a household reading and an auditor (who reads everything else)
    site, link, _supplier, _reader = world
    start = hours_ago(3)
    Reading.objects.create(
        device=link.meter.device, meter=link.meter, batch=_batch(site), start=start,
        end=start + dt.timedelta(hours=1), wh=750, index_in_batch=0,
    )  # fmt: skip
    auditor = auditor_user()

    # when
    seen_by_auditor = selectors_assets.reading_list(user=auditor).count()
    seen_by_household = selectors_assets.reading_list(user=site.household.person).count()

    # then
    assert (seen_by_auditor, seen_by_household) == (0, 1)
