"""The web app's pages: who sees what, forms that call services, fixed query counts."""

import pytest
from django.urls import reverse

from accounts.models import Organisation
from assets.models import Device, ReadingBatch
from certificates.models import Bundle, IssuanceRequest, Transfer, Withdrawal
from tests.registry.support import events_since, last_event_id
from tests.web.world import build_web_world, pending_issuance_request

DASHBOARDS = {
    "producer": "web:producer",
    "buyer": "web:holdings",
    "auditor": "web:audit",
    "issuing_body": "web:issuing",
}


@pytest.mark.django_db
def test_the_front_door_shows_live_figures_to_anyone(client, world, django_assert_max_num_queries):
    # given: a registry with issued, transferred and retired certificates
    # when
    with django_assert_max_num_queries(12):
        response = client.get("/")
    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert "entries in the log" in body
    assert response.context["figures"]["issued_wh"] > 0
    assert response.context["figures"]["retired_wh"] == 50
    assert response.context["ledger"]["checkpoint"] is not None


@pytest.mark.django_db
@pytest.mark.parametrize("role", sorted(DASHBOARDS))
def test_each_person_reaches_their_dashboard_after_login(login, world, role):
    # given
    client = login(world, role)
    # when
    response = client.get(reverse("web:dashboard"), follow=True)
    # then
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse(DASHBOARDS[role])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "page", "status"),
    [
        ("buyer", "web:producer", 403),
        ("producer", "web:issuing", 403),
        ("auditor", "web:holdings", 403),
        ("producer", "web:audit", 403),
        ("issuing_body", "web:audit", 200),
    ],
)
def test_dashboards_are_for_their_roles(login, world, role, page, status):
    assert login(world, role).get(reverse(page)).status_code == status


@pytest.mark.django_db
def test_anonymous_people_are_sent_to_the_login_page(client):
    response = client.get(reverse("web:holdings"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login"))


@pytest.mark.django_db
@pytest.mark.parametrize("role", sorted(DASHBOARDS))
def test_dashboards_do_a_fixed_number_of_queries_whatever_the_data_size(
    client, role, django_assert_max_num_queries
):
    # given: a small world, measured; then a larger one must not need more queries
    small = build_web_world(devices=1, hours=4)
    client.force_login(small.users[role])
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small_run:
        assert client.get(reverse(DASHBOARDS[role])).status_code == 200
    large = build_web_world(devices=4, hours=30, tag="-large")
    client.force_login(large.users[role])
    # when / then
    with django_assert_max_num_queries(len(small_run.captured_queries)):
        assert client.get(reverse(DASHBOARDS[role])).status_code == 200


@pytest.mark.django_db
def test_the_generation_chart_comes_as_json_for_each_step(login, world):
    client = login(world, "producer")
    for step in ("hour", "day", "month"):
        response = client.get(reverse("web:producer-generation"), {"step": step})
        chart = response.context["chart"]
        assert response.status_code == 200
        assert chart["datasets"][0]["label"] == world.device.name
        assert chart["total_kwh"] > 0
        assert 'id="generation-data"' in response.content.decode()


@pytest.mark.django_db
def test_a_producer_registers_a_device_through_the_form(login, world):
    # given
    client = login(world, "producer")
    before = last_event_id()
    organisation = world.users["producer"].memberships.get().organisation
    form = {
        "organisation": organisation.pk,
        "owner_account": world.producer_account.pk,
        "name": "Schoolhouse PV",
        "grid_area": world.device.grid_area_id,
        "technology_code": "T020001",
        "energy_source_code": "F01050100",
        "capacity_kw": "49.5",
        "commissioning_date": "2024-04-01",
        "latitude": "52.1",
        "longitude": "13.2",
        "issuance_policy": "manual",
    }
    # when
    response = client.post(reverse("web:device-register"), form)
    # then
    assert response.status_code == 302
    device = Device.objects.get(name="Schoolhouse PV")
    assert (device.status, device.capacity_w) == (Device.Status.DRAFT, 49_500)
    assert [e["type"] for e in events_since(before)] == ["device.registered"]


@pytest.mark.django_db
def test_a_refused_registration_shows_the_services_reasons_on_the_form(login, world):
    client = login(world, "producer")
    organisation = world.users["producer"].memberships.get().organisation
    before = last_event_id()
    response = client.post(
        reverse("web:device-register"),
        {
            "organisation": organisation.pk,
            "owner_account": world.producer_account.pk,
            "name": "Future PV",
            "grid_area": world.device.grid_area_id,
            "technology_code": "T020001",
            "energy_source_code": "F01050100",
            "capacity_kw": "10",
            "commissioning_date": "2999-01-01",
            "latitude": "52.1",
            "longitude": "13.2",
            "issuance_policy": "manual",
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors
    assert events_since(before) == []


@pytest.mark.django_db
def test_a_buyer_accepts_an_incoming_transfer_with_htmx(login, world):
    client = login(world, "buyer")
    url = reverse("web:transfer-decide", args=[world.pending_transfer.pk, "accept"])
    response = client.post(url, HTTP_HX_REQUEST="true", follow=True)
    assert response.status_code == 200
    world.pending_transfer.refresh_from_db()
    assert world.pending_transfer.status == Transfer.Status.ACCEPTED
    assert "Transfer accepted." in response.content.decode()


@pytest.mark.django_db
def test_a_buyer_transfers_and_retires_through_the_forms(login, world):
    client = login(world, "buyer")
    bundle = world.bundles[0]
    before = last_event_id()
    response = client.post(
        reverse("web:transfer"),
        {"bundle": bundle.pk, "to_account_number": world.producer_account.number, "volume_wh": 10},
    )
    assert response.status_code == 302
    assert [e["type"] for e in events_since(before)] == ["certificate.transferred"]
    rest = Bundle.objects.get(parent=bundle, account=world.buyer_account)
    response = client.post(
        reverse("web:retire"),
        {
            "bundle": rest.pk,
            "volume_wh": "",
            "beneficiary_name": "Town hall",
            "beneficiary_country": "de",
            "consumption_start": "2026-01-01",
            "consumption_end": "2026-02-01",
            "purpose": "voluntary",
        },
    )
    assert response.status_code == 302
    assert "/statements/" in response["Location"]


@pytest.mark.django_db
def test_a_refused_transfer_says_why_and_changes_nothing(login, world):
    client = login(world, "buyer")
    before = last_event_id()
    response = client.post(
        reverse("web:transfer"),
        {"bundle": world.bundles[0].pk, "to_account_number": "GP-NOPE", "volume_wh": 10},
    )
    assert response.status_code == 200
    assert "account_not_found" in response.content.decode()
    assert events_since(before) == []


@pytest.mark.django_db
def test_the_issuing_body_approves_from_its_queues(login, world):
    client = login(world, "issuing_body")
    pending = Organisation.objects.get(legal_name="Newcomer Solar")
    device = Device.objects.get(name="Barn roof")
    client.post(reverse("web:issuing-decide", args=["organisation", pending.pk, "approve"]))
    client.post(reverse("web:issuing-decide", args=["device", device.pk, "approve"]))
    pending.refresh_from_db()
    device.refresh_from_db()
    assert pending.status == Organisation.Status.APPROVED
    assert device.status == Device.Status.APPROVED


@pytest.mark.django_db
def test_the_issuing_body_rejects_from_each_queue_with_a_reason(login, world):
    # given: something waits in every queue
    request = pending_issuance_request(world)
    batch = ReadingBatch.objects.get(status=ReadingBatch.Status.HELD)
    pending = Organisation.objects.get(legal_name="Newcomer Solar")
    device = Device.objects.get(name="Barn roof")
    client = login(world, "issuing_body")
    page = client.get(reverse("web:issuing")).content.decode()
    for kind, pk in (
        ("organisation", pending.pk),
        ("device", device.pk),
        ("issuance", request.pk),
        ("batch", batch.pk),
    ):
        assert reverse("web:issuing-decide", args=[kind, pk, "reject"]) in page
    before = last_event_id()
    # when
    for kind, pk in (
        ("organisation", pending.pk),
        ("device", device.pk),
        ("issuance", request.pk),
        ("batch", batch.pk),
    ):
        response = client.post(
            reverse("web:issuing-decide", args=[kind, pk, "reject"]), {"reason": "Papers missing"}
        )
        assert response.status_code == 302
    # then: one event each, through the owning services
    assert [e["type"] for e in events_since(before)] == [
        "organisation.suspended",
        "device.rejected",
        "issuance_request.rejected",
        "reading_batch.rejected",
    ]
    for row in (pending, device, request, batch):
        row.refresh_from_db()
    assert pending.status == Organisation.Status.SUSPENDED
    assert device.status == Device.Status.REJECTED and device.status_reason == "Papers missing"
    assert request.status == IssuanceRequest.Status.REJECTED
    assert batch.status == ReadingBatch.Status.REJECTED
    assert batch.review_note == "Papers missing"


@pytest.mark.django_db
def test_a_rejection_without_a_reason_is_refused_and_changes_nothing(login, world):
    client = login(world, "issuing_body")
    device = Device.objects.get(name="Barn roof")
    before = last_event_id()
    response = client.post(
        reverse("web:issuing-decide", args=["device", device.pk, "reject"]),
        {"reason": "  "},
        follow=True,
    )
    device.refresh_from_db()
    assert device.status == Device.Status.SUBMITTED
    assert "(invalid)" in response.content.decode()
    assert events_since(before) == []


@pytest.mark.django_db
def test_the_issuing_body_withdraws_certificates_with_a_reason(login, world):
    # given
    client = login(world, "issuing_body")
    bundle = world.bundles[0]
    before = last_event_id()
    # when
    response = client.post(
        reverse("web:issuing-withdraw"),
        {"bundles": f"{bundle.pk}", "reason": "Meter was miscalibrated"},
        follow=True,
    )
    # then
    bundle.refresh_from_db()
    assert bundle.status == Bundle.Status.WITHDRAWN
    assert [e["type"] for e in events_since(before)] == ["certificate.withdrawn"]
    body = response.content.decode()
    assert "Meter was miscalibrated" in body  # the latest withdrawals
    assert Withdrawal.objects.get().reason == "Meter was miscalibrated"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"bundles": "twelve", "reason": "x"}, "Give bundle numbers"),
        ({"bundles": "1", "reason": ""}, "This field is required"),
        ({"bundles": "999999", "reason": "typo"}, "bundle_not_found"),
    ],
    ids=["not numbers", "no reason", "unknown bundle"],
)
def test_a_refused_withdrawal_says_why_and_changes_nothing(login, world, data, message):
    client = login(world, "issuing_body")
    before = last_event_id()
    response = client.post(reverse("web:issuing-withdraw"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert events_since(before) == []
    assert not Withdrawal.objects.exists()


@pytest.mark.django_db
def test_the_issuing_bodys_reject_and_withdraw_speak_russian(login, world):
    client = login(world, "issuing_body")
    client.post(reverse("set_language"), {"language": "ru", "next": "/"})
    body = client.get(reverse("web:issuing")).content.decode()
    assert "Отклонить: Barn roof" in body
    assert "Причина отклонения пакета" in body
    assert "Отозвать сертификаты" in body


@pytest.mark.django_db
def test_the_auditor_verifies_a_bundle_and_a_statement_and_downloads_proofs(login, world):
    client = login(world, "auditor")
    bundle = world.bundles[0]
    page = client.get(reverse("web:verify"), {"subject": str(bundle.pk)})
    assert page.status_code == 200 and page.context["verify_bundle"]["entries"]
    statement = client.get(reverse("web:verify"), {"subject": str(world.retirement.public_id)})
    assert statement.context["kind"] == "statement"
    history = client.get(reverse("web:history-file", args=[bundle.pk])).json()
    assert history["checkpoint"].startswith("gridproof.localhost/registry\n")
    note = client.get(reverse("web:checkpoint-note"))
    assert note.status_code == 200 and "\n\n— " in note.content.decode()


@pytest.mark.django_db
def test_pages_speak_russian_when_asked(client, world):
    # when: the language switch posts the choice
    client.post(reverse("set_language"), {"language": "ru", "next": "/"})
    response = client.get("/")
    # then
    body = response.content.decode()
    assert '<html lang="ru">' in body
    assert "Войти" in body


@pytest.mark.django_db
def test_password_reset_sends_a_mail_with_a_link(client, world, mailoutbox):
    world.users["buyer"].email = "buyer@example.org"
    world.users["buyer"].save(update_fields=["email"])
    response = client.post(reverse("web:password_reset"), {"email": "buyer@example.org"})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    assert "/password-reset/" in mailoutbox[0].body
