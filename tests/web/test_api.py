"""API additions made for the web app: holdings, the API root, the first-hour fixes."""

import pytest

from tests.conftest import client_for


@pytest.mark.django_db
def test_holdings_total_an_accounts_units_by_dimension(world):
    # given: the buyer bought two bundles, retired 50 Wh and has a transfer waiting
    client = client_for(world.users["buyer"])
    # when
    body = client.get(f"/api/v1/accounts/{world.buyer_account.pk}/holdings/").json()
    # then
    by_status = {row["status"]: row["volume_wh"] for row in body["by_status"]}
    assert body["account_number"] == world.buyer_account.number
    assert by_status["retired"] == 50
    assert body["active_wh"] == by_status["active"]
    assert body["volume_wh"] == sum(by_status.values())
    assert sum(r["volume_wh"] for r in body["by_technology"]) == body["volume_wh"]
    assert {r["status"] for r in body["rows"]} == set(by_status)


@pytest.mark.django_db
def test_holdings_of_another_organisations_account_are_not_found(world):
    client = client_for(world.users["buyer"])
    response = client.get(f"/api/v1/accounts/{world.producer_account.pk}/holdings/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.django_db
def test_the_api_root_links_its_collections(client):
    body = client.get("/api/v1/").json()
    assert body["collections"]["bundles"] == "http://testserver/api/v1/bundles/"
    assert body["documentation"] == "http://testserver/api/docs/"


@pytest.mark.django_db
def test_federation_status_answers_with_and_without_the_slash(client):
    assert client.get("/federation/status").status_code == 200
    assert client.get("/federation/status/").status_code == 200


@pytest.mark.django_db
def test_public_certificate_pages_name_accounts_by_number(client, world):
    body = client.get(f"/certificates/{world.pending_transfer.bundle_id}/").content.decode()
    assert f"to account {world.buyer_account.number}" in body
    assert f"to account {world.buyer_account.pk} " not in body


@pytest.mark.django_db
def test_swagger_ui_is_served_by_the_app_itself(client):
    body = client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in body
    assert "cdn" not in body.lower()


@pytest.mark.django_db
def test_the_readmes_device_registration_body_registers_a_device(world):
    # given: the body the README shows, with this world's ids
    import json
    import re

    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text()
    body = json.loads(
        re.search(r'POST "\$BASE/devices/".*?-d \'(\{.*?\})\'', readme, re.DOTALL).group(1)
    )
    organisation = world.producer_account.organisation_id
    body |= {"organisation": organisation, "grid_area": world.device.grid_area_id}
    body["owners"] = [
        {"organisation": organisation, "account": world.producer_account.pk, "share": "1"}
    ]
    # when
    response = client_for(world.users["producer"]).post("/api/v1/devices/", body, format="json")
    # then
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "draft"


@pytest.mark.django_db
def test_demo_logins_are_shown_again_and_can_be_reset(capsys):
    # given: the demo participants, as make run's seed_demo creates them
    import io

    from django.core.management import call_command

    from accounts import demo
    from accounts.models import User

    demo.seed(io.StringIO())
    first = demo.logins_file().read_text()
    # when
    call_command("demo_logins")
    shown = capsys.readouterr().out
    call_command("demo_logins", "--reset")
    # then
    for line in first.splitlines():
        assert line in shown
    username, password = demo.logins_file().read_text().splitlines()[1].split(" / ")
    assert User.objects.get(username=username).check_password(password)
    assert demo.logins_file().read_text() != first
