"""Permission matrix rows for the accounts endpoints (see tests/registry/matrix.py)."""

import hashlib

from accounts.models import ApiToken
from tests.factories import AccountFactory, UserFactory
from tests.registry.matrix import Case, expect

OWN_LOGIN = "a user's own login and tokens are not registry state"


def setup_world(world) -> None:
    world.producer_account = AccountFactory(organisation=world.orgs["producer"])
    world.producer_token = ApiToken.objects.create(
        user=world.users["producer_admin"],
        name="matrix",
        prefix="0123456789ab",
        key_hash=hashlib.sha256(b"not a real token").hexdigest(),
    )
    world.newcomer = UserFactory(username="newcomer")


def _org(name: str):
    return lambda world: {"pk": world.orgs[name].pk}


def _account(world) -> dict:
    return {"pk": world.producer_account.pk}


CASES = [
    Case(
        "POST",
        "/api/v1/auth/register/",
        expect(201),
        body=lambda w, role: {"username": "brand-new", "password": "a long enough passphrase"},
        auditor_exempt=OWN_LOGIN,
    ),
    Case("GET", "/api/v1/me/", expect(200, anonymous=401)),
    Case("GET", "/api/v1/auth/tokens/", expect(200, anonymous=401)),
    Case(
        "POST",
        "/api/v1/auth/tokens/",
        # Anonymous callers give a username and password; logged-in callers get their own.
        expect(201),
        body=lambda w, role: {"name": "cli", "username": "p_admin", "password": w.password},
        auditor_exempt=OWN_LOGIN,
    ),
    Case(
        "DELETE",
        "/api/v1/auth/tokens/{pk}/",
        expect(404, anonymous=401, producer_admin=204),
        name="the producer admin's token",
        args=lambda w: {"pk": w.producer_token.pk},
        codes={"other_admin": "token_not_found"},
        auditor_exempt=OWN_LOGIN,
    ),
    Case("GET", "/api/v1/organisations/", expect(200)),
    Case(
        "POST",
        "/api/v1/organisations/",
        expect(201, anonymous=401, auditor=403),
        body=lambda w, role: {
            "legal_name": "Fresh Solar GmbH",
            "country": "DE",
            "registration_id": "HRB-999999",
            "roles": ["producer"],
        },
        codes={"auditor": "auditor_read_only", "anonymous": "not_authenticated"},
    ),
    Case("GET", "/api/v1/organisations/{pk}/", expect(200), name="approved", args=_org("producer")),
    Case(
        "GET",
        "/api/v1/organisations/{pk}/",
        expect(404, pending_member=200, issuing_body=200, auditor=200),
        name="pending: only its members and staff roles see it",
        args=_org("pending"),
    ),
    Case(
        "GET",
        "/api/v1/organisations/{pk}/",
        expect(404, suspended_member=200, issuing_body=200, auditor=200),
        name="suspended",
        args=_org("suspended"),
    ),
    Case(
        "POST",
        "/api/v1/organisations/{pk}/approve/",
        expect(404, anonymous=401, pending_member=403, issuing_body=200, auditor=403),
        name="pending organisation",
        args=_org("pending"),
        body=lambda w, role: {"reason": "documents checked"},
        codes={"pending_member": "not_issuing_body", "auditor": "not_issuing_body"},
    ),
    Case(
        "POST",
        "/api/v1/organisations/{pk}/suspend/",
        expect(403, anonymous=401, issuing_body=200),
        name="approved producer",
        args=_org("producer"),
        body=lambda w, role: {"reason": "unpaid fees"},
        codes={"producer_admin": "not_issuing_body"},
    ),
    Case(
        "POST",
        "/api/v1/organisations/{pk}/reinstate/",
        expect(404, anonymous=401, suspended_member=403, issuing_body=200, auditor=403),
        name="suspended organisation",
        args=_org("suspended"),
        body=lambda w, role: {"reason": "fees paid"},
    ),
    Case(
        "POST",
        "/api/v1/organisations/{pk}/members/",
        expect(403, anonymous=401, producer_admin=201, issuing_body=201),
        name="approved producer",
        args=_org("producer"),
        body=lambda w, role: {"user": w.newcomer.pk, "role": "viewer"},
        codes={"producer_operator": "not_organisation_member"},
    ),
    Case("GET", "/api/v1/accounts/", expect(200, anonymous=401)),
    Case(
        "POST",
        "/api/v1/accounts/",
        expect(403, anonymous=401, producer_admin=201),
        name="for the producer",
        body=lambda w, role: {
            "organisation": w.orgs["producer"].pk,
            "kind": "trading",
            "name": "Trading 2",
        },
    ),
    Case(
        "POST",
        "/api/v1/accounts/",
        expect(403, anonymous=401, producer_admin=201, other_admin=201, issuing_body=201),
        name="for your own organisation",
        body=lambda w, role: {
            "organisation": w.own_org[role].pk,
            "kind": "trading",
            "name": "Own trading",
        },
        codes={
            "pending_member": "organisation_not_approved",
            "suspended_member": "organisation_not_approved",
            "producer_operator": "not_organisation_member",
            "no_org": "not_organisation_member",
        },
    ),
    Case(
        "GET",
        "/api/v1/accounts/{pk}/",
        expect(
            404,
            anonymous=401,
            producer_admin=200,
            producer_operator=200,
            producer_viewer=200,
            issuing_body=200,
            auditor=200,
        ),
        name="the producer's account",
        args=_account,
    ),
    Case(
        "POST",
        "/api/v1/accounts/{pk}/close/",
        expect(
            404,
            anonymous=401,
            producer_admin=200,
            producer_operator=403,
            producer_viewer=403,
            issuing_body=403,
            auditor=403,
        ),
        name="the producer's account",
        args=_account,
    ),
]
