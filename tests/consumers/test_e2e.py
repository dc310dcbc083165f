"""The household's story through the HTTP API: register, site, meter, grant, reads, revoke."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.assets.factories import (
    DeviceFactory,
    GridAreaFactory,
    MeterFactory,
    add_key,
    hours_ago,
    interval_row,
    signing_key,
)
from tests.consumers.factories import new_metering_point
from tests.factories import OrganisationFactory, UserFactory, issuing_body_user, member_of


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
def test_a_household_grants_its_supplier_hourly_access_revokes_it_and_sees_every_read():
    # given a person, the issuing body and a supplier
    area = GridAreaFactory()
    person = _client(UserFactory(username="sam"))
    issuing_body = _client(issuing_body_user())
    supplier_org = OrganisationFactory(legal_name="Supplier", is_producer=False, is_trader=True)
    supplier = _client(member_of(supplier_org, "viewer"))

    # when the person registers a household and a site, which the issuing body confirms
    household = person.post(
        "/api/v1/households/me/",
        {"name": "Sam", "street": "2 Way", "postcode": "10115", "city": "Berlin", "country": "DE"},
    )
    assert household.status_code == 201, household.content
    site = person.post(
        "/api/v1/sites/",
        {
            "name": "Home",
            "metering_point_id": new_metering_point(),
            "grid_area_id": area.pk,
            "street": "2 Way",
            "postcode": "10115",
            "city": "Berlin",
        },
    ).json()
    assert issuing_body.post(f"/api/v1/sites/{site['id']}/confirm/", {}).status_code == 200

    # and links its smart meter and uploads signed readings
    org_id = household.json()["organisation"]
    meter = MeterFactory(
        device=DeviceFactory(organisation_id=org_id, grid_area=area), kind="consumption"
    )
    key = signing_key(5)
    add_key(meter, key)
    link = person.post(
        f"/api/v1/sites/{site['id']}/meters/", {"meter_id": meter.pk, "role": "import"}
    ).json()
    rows = [interval_row(meter, hours_ago(h), 300 + h, key=key) for h in (4, 3, 2)]
    upload = person.post(f"/api/v1/sites/{site['id']}/readings/", rows, format="json")
    assert upload.status_code == 201 and upload.json()["stored"] == 3

    # and grants the supplier hourly access
    grant = person.post(
        "/api/v1/consents/",
        {
            "site_id": site["id"],
            "grantee_id": supplier_org.pk,
            "purpose": "supply",
            "site_meter_ids": [link["id"]],
            "resolution": "hourly",
            "valid_to": (timezone.now() + dt.timedelta(days=365)).isoformat(),
        },
        format="json",
    )
    assert grant.status_code == 201, grant.content
    window = {"start": hours_ago(5).isoformat(), "end": hours_ago(1).isoformat()}
    read = supplier.get(f"/api/v1/sites/{site['id']}/data/", window)
    revoke = person.post(f"/api/v1/consents/{grant.json()['id']}/revoke/")
    refused = supplier.get(f"/api/v1/sites/{site['id']}/data/", window)

    # then the supplier read the hourly series while the grant held, and not after
    assert read.status_code == 200
    assert [row["wh"] for row in read.json()["series"]] == [304, 303, 302]
    assert revoke.status_code == 200
    assert refused.status_code == 403 and refused.json()["code"] == "consent_required"
    # and the household sees both reads, under which grant, and how each ended
    log = person.get("/api/v1/data-accesses/").json()["results"]
    assert [(a["outcome"], a["consent"], a["reader_organisation"]) for a in log] == [
        ("refused", None, supplier_org.pk),
        ("granted", grant.json()["id"], supplier_org.pk),
    ]
