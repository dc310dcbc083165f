"""Who may call what: every endpoint under /api/v1/ for every role (see matrix.py)."""

import json

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from tests.registry.matrix import ROLES, UNSAFE_METHODS, all_cases, build_world, case_modules
from tests.registry.support import api_endpoints, events_since, last_event_id, route_shape

CASES = all_cases()


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """One world for the ~2,000 cases: built once in an outer transaction; each test's own
    transaction is a savepoint inside it (rolled back after the test, as setUpTestData does),
    and the outer one is rolled back when the module ends."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def _forget_lazy_world_parts(world):
    """Some case modules add objects to the world on first use (the market's book); the test's
    rollback removes their rows, so the next test must find the world as it was built."""
    built = dict(vars(world))
    yield
    vars(world).clear()
    vars(world).update(built)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_permission_matrix(world, case, role):
    # given
    client = APIClient()
    if world.users[role] is not None:
        client.force_authenticate(world.users[role])
    url = case.route.format(**case.args(world))
    body = case.body(world, role) if case.body else None
    before = last_event_id()

    # when
    response = client.generic(
        case.method,
        url,
        json.dumps(body) if body is not None else "",
        content_type="application/json",
    )

    # then
    expected = case.expected[role]
    assert response.status_code == expected, (
        f"{role} {case.method} {url}: expected {expected}, "
        f"got {response.status_code} {response.content[:300]!r}"
    )
    queued = events_since(before)
    if expected >= 400:
        assert set(response.json()) == {"code", "detail", "extra"}
        assert queued == [], "a refused request must not write to the ledger"
        if role in case.codes:
            assert response.json()["code"] == case.codes[role]
    elif case.method in UNSAFE_METHODS:
        assert len(queued) == case.events, [event["type"] for event in queued]
    else:
        assert queued == [], "a read must not write to the ledger"


# Apps whose API landed while this matrix was written and whose rows are still to come.
# Each app's engineer adds tests/<app>/permission_cases.py and removes the app from here;
# the test below fails if an app is listed here and has cases, so the list cannot go stale.
APPS_WITHOUT_CASES_YET: set[str] = set()


def test_every_api_endpoint_has_cases():
    covered = {(route_shape(case.route), case.method) for case in CASES}
    endpoints = {
        (route_shape(route), method): app for (route, method), app in api_endpoints().items()
    }
    with_cases = {module.__name__.split(".")[1] for module in case_modules()}

    missing = sorted(
        endpoint
        for endpoint, app in endpoints.items()
        if endpoint not in covered and app not in APPS_WITHOUT_CASES_YET
    )
    stale = sorted(covered - set(endpoints))

    assert not missing, f"add rows to tests/<app>/permission_cases.py for {missing}"
    assert not stale, f"these cases name no endpoint: {stale}"
    assert not APPS_WITHOUT_CASES_YET & with_cases, "remove them from APPS_WITHOUT_CASES_YET"


def test_cases_are_unique_and_cover_every_role():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), "give cases of one route and method distinct names"
    for case in CASES:
        assert set(case.expected) == set(ROLES), case.id
        assert set(case.codes) <= set(ROLES), case.id


def test_auditors_change_nothing():
    writable = [
        case.id
        for case in CASES
        if case.method in UNSAFE_METHODS
        and not case.auditor_exempt
        and case.expected["auditor"] != 403
    ]
    assert writable == [], "every write by an auditor must be 403"
