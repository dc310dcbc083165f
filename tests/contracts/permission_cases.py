"""Permission matrix rows for the contract endpoints (see tests/registry/matrix.py).

The world: a PPA between the producer (seller) and the other organisation (buyer): an
active one with one execution, and a draft the producer has not agreed to yet.
"""

import datetime as dt

from accounts.models import Account
from assets.models import DeviceOwner
from certificates import services as certificates
from contracts import services
from contracts.kinds.shares import PPA
from tests.certificates.factories import DAY, DeviceFactory, add_readings
from tests.factories import AccountFactory
from tests.registry.matrix import Case, expect

PARTIES_READ = {
    "producer_admin": 200,
    "producer_operator": 200,
    "producer_viewer": 200,
    "other_admin": 200,
    "issuing_body": 200,
    "auditor": 200,
}


def setup_world(world) -> None:
    producer, other = world.orgs["producer"], world.orgs["other"]
    admin, buyer = world.users["producer_admin"], world.users["other_admin"]
    seller_account = AccountFactory(organisation=producer, kind=Account.Kind.TRADING)
    buyer_account = AccountFactory(organisation=other)
    device = DeviceFactory(organisation=producer)
    DeviceOwner.objects.create(
        device=device,
        organisation=producer,
        account=seller_account,
        share_numerator=1,
        share_denominator=1,
    )
    add_readings(device, hours=2)
    terms = {
        "device_id": device.pk,
        "seller_account": seller_account.number,
        "buyer_account": buyer_account.number,
        "share_bp": 2_000,
        "price_per_mwh_minor": 4_000,
        "currency": "EUR",
    }
    window = {"start_at": DAY - dt.timedelta(days=1), "end_at": DAY + dt.timedelta(days=30)}
    world.contract = services.contract_create(actor=admin, kind=PPA, terms=terms, **window)
    services.contract_agree(actor=admin, contract_id=world.contract.pk)
    services.contract_agree(actor=buyer, contract_id=world.contract.pk)
    issuance = certificates.certificate_issue(
        actor=world.users["issuing_body"],
        device_id=device.pk,
        period_start=DAY,
        period_end=DAY + dt.timedelta(hours=2),
    )
    world.issuance = issuance
    world.execution = (
        services.contract_execute(contract_id=world.contract.pk, trigger=f"issuance:{issuance.pk}")
        or world.contract.executions.get()
    )
    world.draft_contract = services.contract_create(
        actor=buyer, kind=PPA, terms=terms | {"share_bp": 1_000}, **window
    )
    services.contract_agree(actor=buyer, contract_id=world.draft_contract.pk)
    world.terms = terms
    world.window = window


def _contract(world) -> dict:
    return {"pk": world.contract.pk}


def _draft(world) -> dict:
    return {"pk": world.draft_contract.pk}


NOT_PARTY = {role: "not_contract_party" for role in ("producer_viewer", "issuing_body", "auditor")}
KEY = "11" * 32
# Parties who may see the obligation but are not its payer (the buyer, other_admin, has
# no money in the world, so its attempt is the 409).
NOT_PAYER_ROLES = {
    role: 403
    for role in (
        "producer_admin",
        "producer_operator",
        "producer_viewer",
        "issuing_body",
        "auditor",
    )
}

CASES = [
    Case("GET", "/api/v1/contracts/", expect(200, anonymous=401)),
    Case(
        "GET", "/api/v1/contracts/{pk}/", expect(404, anonymous=401, **PARTIES_READ), args=_contract
    ),
    Case(
        "POST",
        "/api/v1/contracts/",
        expect(403, anonymous=401, producer_admin=201, producer_operator=201, other_admin=201),
        body=lambda w, role: {
            "kind": PPA,
            "terms": w.terms | {"share_bp": 500},
            "start_at": w.window["start_at"].isoformat(),
            "end_at": w.window["end_at"].isoformat(),
        },
        codes=NOT_PARTY,
    ),
    Case(
        "POST",
        "/api/v1/contracts/{pk}/agree/",
        expect(403, anonymous=401, producer_admin=200, producer_operator=200, other_admin=409),
        args=_draft,
        body=lambda w, role: {},
        codes=NOT_PARTY | {"other_admin": "already_agreed"},
    ),
    Case(
        "GET",
        "/api/v1/contracts/{pk}/document/",
        expect(
            404,
            anonymous=401,
            other_admin=200,
            producer_admin=200,
            producer_operator=200,
            producer_viewer=200,
            issuing_body=200,
            auditor=200,
        ),
        args=_draft,
    ),
    Case(
        "POST",
        "/api/v1/contracts/{pk}/amend/",
        expect(403, anonymous=401, producer_admin=200, producer_operator=200, other_admin=200),
        args=_contract,
        body=lambda w, role: {"terms": w.terms | {"share_bp": 2_500}},
        codes=NOT_PARTY,
    ),
    Case(
        "POST",
        "/api/v1/contracts/{pk}/terminate/",
        expect(403, anonymous=401, producer_admin=200, producer_operator=200, other_admin=200),
        args=_contract,
        codes=NOT_PARTY,
    ),
    Case("GET", "/api/v1/contracts/{pk}/executions/", expect(200, anonymous=401), args=_contract),
    Case("GET", "/api/v1/contracts/{pk}/obligations/", expect(200, anonymous=401), args=_contract),
    Case(
        "GET",
        "/api/v1/contracts/{pk}/dry-run/",
        expect(404, anonymous=401, **PARTIES_READ),
        args=_contract,
    ),
    Case(
        "POST",
        "/api/v1/contracts/executions/{pk}/retry/",
        expect(403, anonymous=401, producer_admin=409, producer_operator=409, other_admin=409),
        args=lambda w: {"pk": w.execution.pk},
        codes=NOT_PARTY | {"producer_admin": "execution_not_retryable"},
    ),
    Case(
        "POST",
        "/api/v1/contracts/obligations/{pk}/pay/",
        expect(404, anonymous=401, other_admin=409, **NOT_PAYER_ROLES),
        args=lambda w: {"pk": w.execution.obligation.pk},
        codes={role: "not_payer" for role in NOT_PAYER_ROLES}
        | {"other_admin": "insufficient_funds"},
    ),
    Case("GET", "/api/v1/contracts/keys/", expect(200, anonymous=401)),
    Case(
        "GET",
        "/api/v1/contracts/keys/{pk}/",
        expect(404, anonymous=401),
        args=lambda w: {"pk": 999999},
    ),
    Case(
        "POST",
        "/api/v1/contracts/keys/",
        expect(403, anonymous=401, producer_admin=201),
        body=lambda w, role: {
            "organisation": w.orgs["producer"].pk,
            "name": "board",
            "public_key": KEY,
        },
        codes={"producer_operator": "not_contract_party", "auditor": "not_contract_party"},
    ),
]
