"""Who may call the consumers endpoints (see tests/registry/matrix.py).

The world has a household (no role of the matrix is that household), a confirmed site whose
import meter "other" (a trader) may read hourly under a grant, a pending second site, and a
community run by the producer whose member the household is (with a community grant).
"""

import datetime as dt

from django.utils import timezone

from consumers.models import DataAccess
from tests.assets.factories import DeviceFactory, MeterFactory
from tests.consumers.factories import CommunityFactory, SiteFactory, consent, member, site_meter
from tests.factories import AccountFactory
from tests.registry.matrix import Case, expect


def setup_world(world):
    world.site = SiteFactory()
    world.household = world.site.household
    world.link = site_meter(world.site)
    world.pending_site = SiteFactory(
        household=world.household, grid_area=world.site.grid_area, status="pending"
    )
    world.consent = consent(world.site, world.orgs["other"], [world.link])
    world.community = CommunityFactory(
        organisation=world.orgs["producer"], grid_area=world.site.grid_area
    )
    world.member = member(
        world.community, world.household.organisation, world.link.meter, site=world.site
    )
    consent(world.site, world.orgs["producer"], [world.link], purpose="community")
    world.producer_device = DeviceFactory(
        organisation=world.orgs["producer"], grid_area=world.site.grid_area
    )
    world.producer_meter = MeterFactory(device=world.producer_device, kind="consumption")
    world.community_account = AccountFactory(organisation=world.orgs["producer"])
    world.access = DataAccess.objects.create(
        household=world.household,
        site=world.site,
        at=timezone.now(),
        what="readings",
        outcome="refused",
        reason="consent_required",
    )


def _last_hour() -> dict[str, str]:
    end = timezone.now().replace(minute=0, second=0, microsecond=0)
    return {"start": (end - dt.timedelta(hours=1)).isoformat(), "end": end.isoformat()}


def _later(days: int) -> str:
    return (timezone.now() + dt.timedelta(days=days)).isoformat()


HOUSEHOLD = {
    "name": "Sam",
    "street": "2 Way",
    "postcode": "10115",
    "city": "Berlin",
    "country": "DE",
}
ONLY_GRANTEE = expect(403, anonymous=401, other_admin=200)
site_pk = lambda w: {"pk": w.site.pk}  # noqa: E731
pending_pk = lambda w: {"pk": w.pending_site.pk}  # noqa: E731
community_pk = lambda w: {"pk": w.community.pk}  # noqa: E731
COMMUNITY_ADMIN = expect(403, anonymous=401, producer_admin=200)

CASES = [
    Case("GET", "/api/v1/households/me/", expect(404, anonymous=401)),
    Case(
        "POST",
        "/api/v1/households/me/",
        expect(201, anonymous=401, issuing_body=403, auditor=403),
        body=lambda w, role: HOUSEHOLD,
        codes={"auditor": "household_not_allowed"},
    ),
    Case("GET", "/api/v1/households/me/export/", expect(404, anonymous=401)),
    Case("GET", "/api/v1/households/me/export/csv/", expect(404, anonymous=401)),
    Case("GET", "/api/v1/data-accesses/", expect(200, anonymous=401)),
    Case(
        "GET",
        "/api/v1/data-accesses/{pk}/",
        expect(404, anonymous=401),
        args=lambda w: {"pk": w.access.pk},
    ),
    Case("GET", "/api/v1/sites/", expect(200, anonymous=401)),
    Case(
        "POST",
        "/api/v1/sites/",
        expect(404, anonymous=401, auditor=403),
        body=lambda w, role: {
            "name": "x",
            "metering_point_id": "871520000000000018",
            "grid_area_id": 1,
            "street": "s",
            "postcode": "p",
            "city": "c",
        },
        codes={"producer_admin": "household_not_found", "auditor": "auditor_read_only"},
    ),
    Case(
        "GET",
        "/api/v1/sites/{pk}/",
        expect(404, anonymous=401, issuing_body=200, producer_admin=200),
        name="pending, household in the producer's community",
        args=pending_pk,
    ),
    Case(
        "POST",
        "/api/v1/sites/{pk}/confirm/",
        expect(403, anonymous=401, issuing_body=200, producer_admin=200),
        args=pending_pk,
        body=lambda w, role: {"reason": "checked"},
        codes={"other_admin": "not_site_confirmer"},
    ),
    Case(
        "POST",
        "/api/v1/sites/{pk}/reject/",
        expect(403, anonymous=401, issuing_body=200, producer_admin=200),
        args=pending_pk,
        body=lambda w, role: {"reason": "not this address"},
    ),
    Case(
        "POST",
        "/api/v1/sites/{pk}/meters/",
        expect(403, anonymous=401),
        args=site_pk,
        body=lambda w, role: {"meter_id": w.producer_meter.pk, "role": "export"},
        codes={"producer_admin": "not_site_household"},
    ),
    Case(
        "POST",
        "/api/v1/sites/{pk}/readings/",
        expect(404, anonymous=401, auditor=403),
        args=site_pk,
        codes={"auditor": "auditor_read_only"},
        body=lambda w, role: [{"meter": w.link.meter.serial, "start": "x", "end": "y", "wh": 1}],
    ),
    Case(
        "GET",
        "/api/v1/sites/{pk}/data/",
        ONLY_GRANTEE,
        args=site_pk,
        codes={"issuing_body": "consent_required", "auditor": "consent_required"},
    ),
    Case("GET", "/api/v1/sites/{pk}/hourly-matching/", ONLY_GRANTEE, args=site_pk),
    Case("GET", "/api/v1/sites/{pk}/hourly-matching/csv/", ONLY_GRANTEE, args=site_pk),
    Case("GET", "/api/v1/consents/", expect(200, anonymous=401)),
    Case(
        "GET",
        "/api/v1/consents/{pk}/",
        expect(404, anonymous=401, other_admin=200),
        args=lambda w: {"pk": w.consent.pk},
    ),
    Case(
        "POST",
        "/api/v1/consents/",
        expect(403, anonymous=401),
        body=lambda w, role: {
            "site_id": w.site.pk,
            "grantee_id": w.orgs["other"].pk,
            "purpose": "advice",
            "site_meter_ids": [w.link.pk],
            "resolution": "daily",
            "valid_to": _later(10),
        },
        codes={"other_admin": "not_site_household"},
    ),
    Case(
        "POST",
        "/api/v1/consents/{pk}/revoke/",
        expect(404, anonymous=401, auditor=403),
        args=lambda w: {"pk": w.consent.pk},
        codes={"other_admin": "consent_not_found", "auditor": "auditor_read_only"},
    ),
    Case("GET", "/api/v1/communities/", expect(200)),
    Case("GET", "/api/v1/communities/{pk}/", expect(200), args=community_pk),
    Case(
        "POST",
        "/api/v1/communities/",
        expect(403, anonymous=401, producer_admin=201, other_admin=201, issuing_body=201),
        body=lambda w, role: {
            "organisation_id": w.own_org[role].pk,
            "name": "Block 7",
            "grid_area_id": w.site.grid_area_id,
            "key_kind": "dynamic",
            "internal_price_minor_per_kwh": 18,
        },
    ),
    Case(
        "POST",
        "/api/v1/communities/{pk}/members/",
        expect(403, anonymous=401, producer_admin=201, other_admin=400, issuing_body=400),
        args=community_pk,
        body=lambda w, role: {
            "organisation_id": w.own_org[role].pk,
            "consumption_meter_id": w.producer_meter.pk,
            "account_id": w.community_account.pk,
        },
        codes={"producer_viewer": "not_organisation_admin"},
    ),
    Case(
        "POST",
        "/api/v1/communities/{pk}/key/",
        COMMUNITY_ADMIN,
        args=community_pk,
        body=lambda w, role: {"key_kind": "static", "shares": {str(w.member.pk): "1/1"}},
    ),
    Case(
        "POST",
        "/api/v1/communities/{pk}/devices/",
        expect(403, anonymous=401, producer_admin=201),
        args=community_pk,
        body=lambda w, role: {"device_id": w.producer_device.pk},
    ),
    Case(
        "GET",
        "/api/v1/communities/{pk}/allocation/",
        expect(404, anonymous=401, producer_admin=200, producer_operator=200, producer_viewer=200),
        args=community_pk,
    ),
    Case(
        "POST",
        "/api/v1/communities/{pk}/distributions/",
        expect(403, anonymous=401, producer_admin=200, producer_operator=200),
        args=community_pk,
        body=lambda w, role: _last_hour(),
        codes={"producer_viewer": "not_community_operator"},
        events=0,  # no shared device, no readings: every hour skipped, nothing changed
    ),
    Case(
        "POST",
        "/api/v1/community-members/{pk}/leave/",
        COMMUNITY_ADMIN,
        args=lambda w: {"pk": w.member.pk},
        body=lambda w, role: {},
    ),
]
