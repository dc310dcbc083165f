"""Idempotency-Key: a retried POST gets the first response back and acts once."""

import datetime as dt
import json
import threading
import time

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework import permissions
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from accounts import services
from accounts.models import Account, Membership, Organisation
from registry.admin import IdempotencyRecordAdmin
from registry.celery import app
from registry.idempotency import idempotency_records_purge, idempotent
from registry.models import IdempotencyRecord
from tests.conftest import client_for, requires_postgres
from tests.factories import OrganisationFactory, UserFactory, member_of
from tests.registry.support import events_since, last_event_id, row_counts

ACCOUNTS = "/api/v1/accounts/"


def account_body(organisation: Organisation, name: str = "Trading") -> dict:
    return {"organisation": organisation.pk, "kind": "trading", "name": name}


def post(client: APIClient, body, key: str | None, url: str = ACCOUNTS, **kwargs):
    headers = {"Idempotency-Key": key} if key is not None else {}
    if "content_type" not in kwargs:
        kwargs["format"] = "json"
    return client.post(url, body, headers=headers, **kwargs)


@pytest.fixture
def counted_account_open(monkeypatch):
    """Count the calls that reach the service."""
    calls = []
    original = services.account_open

    def account_open(**kwargs):
        calls.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(services, "account_open", account_open)
    return calls


@pytest.fixture
def producer():
    organisation = OrganisationFactory()
    return organisation, client_for(member_of(organisation))


@pytest.mark.django_db
def test_a_retry_replays_the_first_response_without_acting_again(producer, counted_account_open):
    # given
    organisation, client = producer
    before = last_event_id()

    # when
    first = post(client, account_body(organisation), "key-1")
    retry = post(client, account_body(organisation), "key-1")

    # then
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(counted_account_open) == 1
    assert Account.objects.count() == 1
    assert [e["type"] for e in events_since(before)] == ["account.opened"]
    record = IdempotencyRecord.objects.get()
    assert (record.key, record.request_method, record.request_path) == ("key-1", "POST", ACCOUNTS)
    assert (record.response_status, record.response_body) == (201, first.json())


@pytest.mark.django_db
def test_a_retry_matches_whatever_the_json_formatting(producer, counted_account_open):
    organisation, client = producer
    compact = json.dumps(account_body(organisation), separators=(",", ":"))
    spaced = json.dumps(dict(reversed(account_body(organisation).items())), indent=2)

    first = post(client, compact, "key-1", content_type="application/json")
    retry = post(client, spaced, "key-1", content_type="application/json")

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert len(counted_account_open) == 1


def _multipart(boundary: str, fields: list[tuple[str, str]]) -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields
    ]
    return ("".join(parts) + f"--{boundary}--\r\n").encode()


@pytest.mark.django_db
def test_a_multipart_body_is_415_and_claims_no_key():
    # The API takes JSON (a form cannot say null, false or a list the way the schema
    # does); only the readings upload takes multipart, and it is not idempotent.
    client = client_for(UserFactory())
    fields = [("legal_name", "Form GmbH"), ("country", "DE"), ("registration_id", "HRB-7")]

    response = client.post(
        "/api/v1/organisations/",
        _multipart("boundary-one", fields),
        content_type="multipart/form-data; boundary=boundary-one",
        headers={"Idempotency-Key": "form-1"},
    )

    assert response.status_code == 415
    assert Organisation.objects.count() == 0
    assert not IdempotencyRecord.objects.filter(key="form-1").exists()


@pytest.mark.django_db
def test_the_same_key_for_another_request_is_refused(producer, counted_account_open):
    # given
    organisation, client = producer
    post(client, account_body(organisation), "key-1")
    before = row_counts(Account, Organisation, IdempotencyRecord), last_event_id()

    # when
    other_body = post(client, account_body(organisation, name="Other"), "key-1")
    other_path = post(
        client,
        {"legal_name": "X", "country": "DE", "registration_id": "1", "roles": ["trader"]},
        "key-1",
        url="/api/v1/organisations/",
    )

    # then
    for response in (other_body, other_path):
        assert response.status_code == 422
        assert response.json()["code"] == "idempotency_key_reused"
        assert response.json()["extra"] == {"key": "key-1", "first_request": f"POST {ACCOUNTS}"}
        assert "Idempotent-Replayed" not in response.headers
    assert len(counted_account_open) == 1
    assert (row_counts(Account, Organisation, IdempotencyRecord), last_event_id()) == before


@pytest.mark.django_db
def test_keys_belong_to_one_user(producer, counted_account_open):
    organisation, client = producer
    colleague = client_for(member_of(organisation))

    first = post(client, account_body(organisation), "shared-key")
    theirs = post(colleague, account_body(organisation), "shared-key")

    assert (first.status_code, theirs.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.json()["number"] != first.json()["number"]
    assert IdempotencyRecord.objects.count() == 2


@pytest.mark.django_db
def test_a_failed_request_releases_its_key(counted_account_open):
    # given: an organisation that is not approved yet
    organisation = OrganisationFactory(status=Organisation.Status.PENDING)
    client = client_for(member_of(organisation))

    # when: the service refuses, and so does the serializer
    refused = post(client, account_body(organisation), "key-1")
    invalid = post(client, {"organisation": organisation.pk}, "key-2")

    # then: no key is kept, so the same keys work once the problem is fixed
    assert refused.status_code == 403
    assert invalid.status_code == 400
    assert IdempotencyRecord.objects.count() == 0
    Organisation.objects.filter(pk=organisation.pk).update(status=Organisation.Status.APPROVED)
    retried = post(client, account_body(organisation), "key-1")
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert len(counted_account_open) == 2
    assert Account.objects.count() == 1


@pytest.mark.django_db
def test_a_malformed_body_with_a_key_is_400_and_keeps_no_key(producer):
    _, client = producer
    response = post(client, '{"organisation": ', "key-1", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"
    assert IdempotencyRecord.objects.count() == 0


@pytest.mark.django_db
def test_requests_without_a_key_are_not_deduplicated(producer):
    organisation, client = producer
    post(client, account_body(organisation), None)
    post(client, account_body(organisation), None)
    assert Account.objects.count() == 2
    assert IdempotencyRecord.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "k" * 256, "tab\tkey", "clé", "two words"])
def test_a_malformed_key_is_refused(producer, key):
    organisation, client = producer
    before = row_counts(Account, IdempotencyRecord)

    response = client.post(
        ACCOUNTS, account_body(organisation), format="json", HTTP_IDEMPOTENCY_KEY=key
    )

    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_invalid"
    assert list(response.json()["extra"]["fields"]) == ["Idempotency-Key"]
    assert row_counts(Account, IdempotencyRecord) == before


@pytest.mark.django_db
def test_a_key_lives_for_the_configured_time(producer, settings):
    organisation, client = producer
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 2

    post(client, account_body(organisation), "key-1")

    record = IdempotencyRecord.objects.get()
    lifetime = record.expires_at - record.created_at
    assert dt.timedelta(hours=2) - dt.timedelta(seconds=5) < lifetime <= dt.timedelta(hours=2)


@pytest.mark.django_db
def test_an_expired_key_acts_again(producer, counted_account_open):
    organisation, client = producer
    post(client, account_body(organisation), "key-1")
    IdempotencyRecord.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    again = post(client, account_body(organisation), "key-1")

    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert len(counted_account_open) == 2
    assert IdempotencyRecord.objects.get().response_body == again.json()


@pytest.mark.django_db
def test_the_periodic_purge_deletes_expired_keys_only():
    # given
    user = UserFactory()
    now = timezone.now()
    for key, expires in [("old", now - dt.timedelta(minutes=1)), ("live", now + dt.timedelta(1))]:
        IdempotencyRecord.objects.create(
            user=user,
            key=key,
            request_method="POST",
            request_path="/api/v1/accounts/",
            request_hash="0" * 64,
            response_status=201,
            response_body={},
            expires_at=expires,
        )

    # when
    app.loader.import_default_modules()  # what a worker does at start: find <app>/tasks.py
    deleted = app.tasks["registry.tasks.idempotency_keys_purge_task"].apply().get()

    # then
    assert deleted == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["live"]
    assert idempotency_records_purge(now=now + dt.timedelta(days=2)) == 1


def test_the_purge_is_scheduled(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["idempotency-keys-purge"]
    assert entry["task"] == "registry.tasks.idempotency_keys_purge_task"
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks


def test_the_admin_shows_records_read_only():
    from django.contrib import admin

    model_admin = admin.site._registry[IdempotencyRecord]
    assert isinstance(model_admin, IdempotencyRecordAdmin)
    assert not model_admin.has_add_permission(None)
    assert not model_admin.has_change_permission(None)
    assert not model_admin.has_delete_permission(None)


# The decorator on its own, with a view that writes a row itself.


class _RowView(APIView):
    permission_classes = [permissions.AllowAny]
    status_to_return = 201

    @idempotent
    def post(self, request):
        Organisation.objects.create(
            legal_name="Row", country="DE", registration_id=f"R-{time.monotonic_ns()}"
        )
        return Response({"made": True}, status=self.status_to_return)


def _call(view_class, user, key: str = "k"):
    request = APIRequestFactory().post(
        "/api/v1/rows/", {"a": 1}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    if user is not None:
        force_authenticate(request, user)
    return view_class.as_view()(request)


@pytest.mark.django_db
def test_anonymous_requests_are_served_without_a_key():
    assert _call(_RowView, None).status_code == 201
    assert _call(_RowView, None).status_code == 201
    assert Organisation.objects.count() == 2
    assert IdempotencyRecord.objects.count() == 0


@pytest.mark.django_db
def test_an_error_response_rolls_back_the_view_and_the_key():
    class Failing(_RowView):
        status_to_return = 409

    response = _call(Failing, UserFactory())

    assert response.status_code == 409
    assert Organisation.objects.count() == 0
    assert IdempotencyRecord.objects.count() == 0


@pytest.mark.django_db
def test_a_key_without_a_stored_response_is_in_progress():
    user = UserFactory()
    _call(_RowView, user)
    IdempotencyRecord.objects.update(response_status=None)

    response = _call(_RowView, user)

    assert response.status_code == 409
    assert response.data["code"] == "idempotency_key_in_progress"
    assert Organisation.objects.count() == 1


# Concurrency: real transactions on PostgreSQL.


def _race(first_request, second_request, *, hold_first):
    """Run two requests in threads so that the second arrives while the first is inside
    its transaction, and `hold_first` (called inside the first's service) keeps that
    transaction open until the second is seen waiting on a lock."""
    second_pid: list[int] = []
    pid_known = threading.Event()
    first_inside = threading.Event()
    results: dict[str, object] = {}
    errors: list[BaseException] = []

    def wait_for_second_to_block() -> bool:
        pid_known.wait(30)
        deadline = time.monotonic() + 30
        with connection.cursor() as cursor:
            while time.monotonic() < deadline:
                cursor.execute(
                    "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", second_pid
                )
                if cursor.fetchone()[0]:
                    return True
                time.sleep(0.01)
        return False

    hold_first.wait_for_second = wait_for_second_to_block
    hold_first.inside = first_inside

    def run(name, request, before=None):
        try:
            if before:
                before()
            results[name] = request()
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    def announce_pid():
        first_inside.wait(30)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            second_pid.append(cursor.fetchone()[0])
        pid_known.set()

    threads = [
        threading.Thread(target=run, args=("first", first_request)),
        threading.Thread(target=run, args=("second", second_request, announce_pid)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    return results["first"], results["second"]


class _Hold:
    """Wraps account_open: act, then keep the transaction open until the duplicate waits."""

    def __init__(self, original, fail: bool = False):
        self.original, self.fail = original, fail
        self.calls = 0
        self.second_was_blocked = False

    def __call__(self, **kwargs):
        self.calls += 1
        account = self.original(**kwargs)
        if self.calls == 1:
            self.inside.set()
            self.second_was_blocked = self.wait_for_second()
            if self.fail:
                from registry.errors import Conflict

                raise Conflict("the first attempt fails after writing")
        return account


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_act_exactly_once(monkeypatch, ledger_pending_count):
    # given
    organisation = OrganisationFactory()
    admin = member_of(organisation, role=Membership.Role.ADMIN)
    hold = _Hold(services.account_open)
    monkeypatch.setattr(services, "account_open", hold)
    events_before = ledger_pending_count()

    def request():
        return post(client_for(admin), account_body(organisation), "race-key")

    # when
    first, second = _race(request, request, hold_first=hold)

    # then
    assert hold.second_was_blocked, "the duplicate should have waited on the key row"
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert hold.calls == 1
    assert Account.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1
    assert ledger_pending_count() == events_before + 1


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_when_the_first_fails_the_waiting_duplicate_acts(monkeypatch, ledger_pending_count):
    # given
    organisation = OrganisationFactory()
    admin = member_of(organisation, role=Membership.Role.ADMIN)
    hold = _Hold(services.account_open, fail=True)
    monkeypatch.setattr(services, "account_open", hold)
    events_before = ledger_pending_count()

    def request():
        return post(client_for(admin), account_body(organisation), "race-key")

    # when
    first, second = _race(request, request, hold_first=hold)

    # then: the first rolled back (account, event and key); the second did the work
    assert hold.second_was_blocked
    assert first.status_code == 409
    assert second.status_code == 201
    assert "Idempotent-Replayed" not in second.headers
    assert hold.calls == 2
    assert list(Account.objects.values_list("number", flat=True)) == [second.json()["number"]]
    assert IdempotencyRecord.objects.get().response_body == second.json()
    assert ledger_pending_count() == events_before + 1
