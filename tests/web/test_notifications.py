"""The notifications page: unread first, mark read, the count in the header, Russian."""

import pytest
from django.urls import reverse

from notifications.models import Notification, Topic
from notifications.services import notifications_derive_pending
from notifications.texts import TITLES
from tests.web.world import build_web_world


def _note(user, n: int, *, read: bool = False) -> Notification:
    from django.utils import timezone

    return Notification.objects.create(
        user=user,
        topic=Topic.TRANSFER_ACCEPTED,
        params={"transfer_id": 1000 + n, "volume_wh": 5000, "to_account": "GP-X"},
        subject=f"transfer:{1000 + n}",
        key=f"test:{n}",
        read_at=timezone.now() if read else None,
    )


@pytest.fixture
def buyer(world, login):
    # given: the ledger's entries turned into notifications (the buyer's incoming transfer)
    notifications_derive_pending()
    return login(world, "buyer")


@pytest.mark.django_db
def test_the_buyer_sees_the_incoming_transfer_unread_first_and_counted(buyer, world):
    _note(world.users["buyer"], 1, read=True)
    # when
    response = buyer.get(reverse("web:notifications"))
    # then: the unread one (waiting for the buyer) comes before the read one
    body = response.content.decode()
    unread = response.context["unread"]
    assert [row["notification"].topic for row in unread] == [Topic.TRANSFER_INCOMING]
    assert f"Transfer {world.pending_transfer.pk} of 0.1 kWh" in unread[0]["body"]
    assert [row["notification"].key for row in response.context["read"]] == ["test:1"]
    assert body.index("Incoming transfer to accept") < body.index("Transfer accepted")
    assert response.context["unread_notifications"] == 1
    assert '<span class="badge" aria-hidden="true">1</span>' in body


@pytest.mark.django_db
def test_marking_one_read_moves_it_and_clears_the_count(buyer, world):
    notification = Notification.objects.get(user=world.users["buyer"])
    # when
    response = buyer.post(reverse("web:notification-read", args=[notification.pk]), follow=True)
    # then
    notification.refresh_from_db()
    assert notification.read_at is not None
    assert response.context["unread"] == []
    assert response.context["unread_notifications"] == 0
    assert 'class="badge"' not in response.content.decode().split("<main")[0]


@pytest.mark.django_db
def test_mark_all_read(buyer, world):
    for n in range(3):
        _note(world.users["buyer"], n)
    buyer.post(reverse("web:notifications-read"))
    assert not Notification.objects.filter(user=world.users["buyer"], read_at=None).exists()


@pytest.mark.django_db
def test_someone_elses_notification_cannot_be_marked(buyer, world):
    theirs = _note(world.users["producer"], 1)
    response = buyer.post(reverse("web:notification-read", args=[theirs.pk]))
    theirs.refresh_from_db()
    assert response.status_code == 404
    assert theirs.read_at is None


@pytest.mark.django_db
def test_the_page_is_for_people_who_are_signed_in(client):
    response = client.get(reverse("web:notifications"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login"))


@pytest.mark.django_db
def test_the_page_does_a_fixed_number_of_queries_whatever_the_count(
    client, django_assert_max_num_queries
):
    # given: one notification, measured; then many more must not need more queries
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    world = build_web_world()
    user = world.users["buyer"]
    _note(user, 0)
    _note(user, 1, read=True)
    client.force_login(user)
    with CaptureQueriesContext(connection) as small_run:
        assert client.get(reverse("web:notifications")).status_code == 200
    for n in range(2, 60):
        _note(user, n, read=n % 2 == 0)
    # when / then
    with django_assert_max_num_queries(len(small_run.captured_queries)):
        assert client.get(reverse("web:notifications")).status_code == 200


@pytest.mark.django_db
def test_notifications_speak_russian(buyer, world):
    buyer.post(reverse("set_language"), {"language": "ru", "next": "/"})
    body = buyer.get(reverse("web:notifications")).content.decode()
    assert "Уведомления" in body
    assert "Входящая передача ждёт принятия" in body
    assert f"Передача {world.pending_transfer.pk}" in body
    assert "Отметить всё прочитанным" in body


def test_every_topic_has_a_translatable_title():
    assert set(TITLES) == set(Topic.values)
