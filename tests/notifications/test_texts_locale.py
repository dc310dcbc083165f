"""A notification is stored as facts and worded when read: numbers, units and dates in the
reader's language, on the API and on the web page alike."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import translation

from notifications.models import Notification, Topic
from notifications.texts import notification_body
from tests.conftest import client_for
from tests.factories import OrganisationFactory, member_of

pytestmark = pytest.mark.django_db
NBSP = "\xa0"  # Django's Russian thousands separator


@pytest.fixture
def reader():
    return member_of(OrganisationFactory(legal_name="GreenBuy GmbH"))


@pytest.fixture
def incoming(reader):
    return Notification.objects.create(
        user=reader,
        organisation=reader.memberships.get().organisation,
        topic=Topic.TRANSFER_INCOMING,
        action_required=True,
        subject="transfer:12",
        key="test:transfer:12",
        params={
            "transfer_id": 12,
            "volume_wh": 1_234_500,
            "from_account": "GP-00001-T001",
            "to_account": "GP-00004-T001",
        },
    )


def test_the_same_notification_reads_in_each_readers_language_on_the_api(reader, incoming):
    # given one stored notification of 1,234,500 Wh
    client = client_for(reader)
    # when an English and a Russian reader list it
    with translation.override("en"):
        english = client.get("/api/v1/notifications/", HTTP_ACCEPT_LANGUAGE="en").json()
        russian = client.get("/api/v1/notifications/", HTTP_ACCEPT_LANGUAGE="ru").json()
    # then each reads the volume with their locale's separators and unit
    (en,) = english["results"]
    (ru,) = russian["results"]
    assert "Transfer 12 of 1,234.5 kWh from account GP-00001-T001" in en["body"]
    assert f"Передача 12 на 1{NBSP}234,5 кВт·ч со счёта GP-00001-T001" in ru["body"]  # noqa: RUF001
    assert en["title"] == "Incoming transfer to accept"
    assert ru["title"] != en["title"]
    # and what is stored stays the facts, not a sentence
    assert en["params"]["volume_wh"] == ru["params"]["volume_wh"] == 1_234_500


def test_the_web_page_words_it_for_the_reader_too(client, reader, incoming):
    client.force_login(reader)
    # (the override puts back this thread's language, which the Russian request switches)
    with translation.override("en"):
        page = client.get(reverse("web:notifications")).content.decode()
        assert "1,234.5 kWh" in page
        client.post(reverse("set_language"), {"language": "ru", "next": "/"})
        page = client.get(reverse("web:notifications")).content.decode()
        assert f"1{NBSP}234,5 кВт·ч" in page


@pytest.mark.parametrize(
    ("wh", "english", "russian"),
    [
        (1_000_000, "1,000", f"1{NBSP}000"),
        (1, "0.001", "0,001"),
        (12_345_678, "12,345.678", f"12{NBSP}345,678"),
    ],
)
def test_kilowatt_hours_are_exact_and_grouped(wh, english, russian):
    params = {"transfer_id": 1, "to_account": "A", "volume_wh": wh}
    with translation.override("en"):
        assert f"of {english} kWh" in notification_body(Topic.TRANSFER_ACCEPTED, params)
    with translation.override("ru"):
        assert f"на {russian} кВт·ч" in notification_body(Topic.TRANSFER_ACCEPTED, params)


def test_dates_of_an_expiry_warning_follow_the_locale():
    params = {
        "account": "GP-00004-T001",
        "bundles": 1200,
        "volume_wh": 5_000,
        "until": dt.date(2027, 1, 4).isoformat(),
        "first_expiry": dt.date(2026, 12, 20).isoformat(),
    }
    with translation.override("en"):
        text = notification_body(Topic.CERTIFICATES_EXPIRING, params)
    assert text == (
        "1,200 bundles (5 kWh) in account GP-00004-T001 expire by Jan. 4, 2027; the first on "
        "Dec. 20, 2026."
    )
    with translation.override("ru"):
        text = notification_body(Topic.CERTIFICATES_EXPIRING, params)
    assert "4 января 2027" in text and "20 декабря 2026" in text and f"1{NBSP}200" in text
