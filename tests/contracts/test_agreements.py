"""Contracts become active only when every party agreed; refusals change nothing."""

import hashlib

import pytest
from nacl.signing import SigningKey

from contracts import services
from contracts.kinds.shares import PPA
from contracts.models import Agreement, Contract, ContractParty, OrganisationKey
from ledger.canonical import canonical_bytes
from ledger.models import PendingEvent
from registry.errors import DomainError
from tests.contracts.conftest import END, START, make_ppa, ppa_terms
from tests.factories import OrganisationFactory, member_of

pytestmark = pytest.mark.django_db

MODELS = (Contract, ContractParty, Agreement, OrganisationKey)


def state() -> tuple:
    return (
        tuple(m.objects.count() for m in MODELS),
        list(Contract.objects.order_by("pk").values_list("status", "version", "proposal")),
        PendingEvent.objects.count(),
    )


def refused(call, code: str) -> DomainError:
    """Run `call`, expect the domain error `code`; nothing written, no event."""
    before = state()
    with pytest.raises(DomainError) as info:
        call()
    assert info.value.code == code, (info.value.code, info.value.detail, info.value.extra)
    assert state() == before
    return info.value


def kinds_since(before: int) -> list[str]:
    return list(PendingEvent.objects.filter(pk__gt=before).values_list("kind", flat=True))


def last() -> int:
    return PendingEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def test_a_ppa_becomes_active_when_both_parties_agreed(world):
    # given
    before = last()
    contract = make_ppa(world, active=False)

    # when
    services.contract_agree(actor=world.seller, contract_id=contract.pk)
    contract.refresh_from_db()
    half = contract.status
    services.contract_agree(actor=world.buyer, contract_id=contract.pk)
    contract.refresh_from_db()

    # then
    assert (half, contract.status) == ("draft", "active")
    assert contract.terms_sha256 == hashlib.sha256(canonical_bytes(contract.terms)).hexdigest()
    assert kinds_since(before) == ["contract.created", "contract.agreed", "contract.activated"]
    event = PendingEvent.objects.order_by("-pk").first()
    assert f"contract:{contract.pk}" in event.subjects
    assert f"organisation:{world.buyer_account.organisation_id}" in event.subjects


def test_one_party_agreeing_twice_is_refused(world):
    contract = make_ppa(world, active=False)
    services.contract_agree(actor=world.seller, contract_id=contract.pk)
    refused(
        lambda: services.contract_agree(actor=world.seller, contract_id=contract.pk),
        "already_agreed",
    )


def test_a_non_member_or_a_viewer_cannot_agree(world):
    contract = make_ppa(world, active=False)
    stranger = member_of(OrganisationFactory())
    refused(
        lambda: services.contract_agree(actor=stranger, contract_id=contract.pk),
        "not_contract_party",
    )
    refused(
        lambda: services.contract_agree(actor=world.viewer, contract_id=contract.pk),
        "not_contract_party",
    )


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"share_bp": 0}, "share_bp", "invalid_terms"),
        ({"share_bp": 10_001}, "share_bp", "invalid_terms"),
        ({"price_per_mwh_minor": -1}, "price_per_mwh_minor", "invalid_terms"),
        ({"price_per_mwh_minor": 1.5}, "price_per_mwh_minor", "invalid_terms"),
        ({"currency": "euro"}, "currency", "invalid_terms"),
        # the shape of a code, but no currency (ZZZ) or none a price is paid in (XXX, XAU)
        ({"currency": "ZZZ"}, "currency", "invalid_terms"),
        ({"currency": "XXX"}, "currency", "invalid_terms"),
        ({"currency": "XAU"}, "currency", "invalid_terms"),
        # the shape is right (the schema allows it); the registry has no such account
        ({"buyer_account": "NOPE"}, "buyer_account", "terms_unmet"),
        ({"surprise": 1}, "surprise", "invalid_terms"),
    ],
)
def test_out_of_range_terms_are_refused(world, overrides, field, code):
    error = refused(
        lambda: services.contract_create(
            actor=world.seller,
            kind=PPA,
            terms=ppa_terms(world, **overrides),
            start_at=START,
            end_at=END,
        ),
        code,
    )
    assert field in error.extra["fields"]


def test_ppas_above_100_percent_of_one_device_are_refused(world):
    # given
    make_ppa(world, share_bp=7_000)

    # when / then: at drafting ...
    refused(lambda: make_ppa(world, active=False, share_bp=3_001), "overlapping_claims")
    # ... and at activation, when another draft took the room meanwhile
    first = make_ppa(world, active=False, share_bp=3_000)
    second = make_ppa(world, active=False, share_bp=3_000)
    for actor in (world.seller, world.buyer):
        services.contract_agree(actor=actor, contract_id=first.pk)
    services.contract_agree(actor=world.seller, contract_id=second.pk)
    refused(
        lambda: services.contract_agree(actor=world.buyer, contract_id=second.pk),
        "overlapping_claims",
    )


def test_a_signed_agreement_verifies_offline_and_a_bad_signature_is_refused(world):
    # given
    signing = SigningKey.generate()
    key = services.organisation_key_register(
        actor=world.seller,
        organisation_id=world.seller_account.organisation_id,
        name="board",
        public_key=signing.verify_key.encode().hex(),
    )
    contract = make_ppa(world, active=False)
    document = services.contract_document(contract_id=contract.pk)
    wrong = SigningKey.generate().sign(document).signature.hex()

    # when
    refused(
        lambda: services.contract_agree(
            actor=world.seller, contract_id=contract.pk, key_id=key.pk, signature=wrong
        ),
        "bad_signature",
    )
    signature = signing.sign(document).signature.hex()
    services.contract_agree(
        actor=world.seller, contract_id=contract.pk, key_id=key.pk, signature=signature
    )

    # then: the stored signature verifies over the document with the registered key alone
    agreement = Agreement.objects.get(contract=contract)
    signing.verify_key.verify(document, bytes.fromhex(agreement.signature))
    assert agreement.document_sha256 == hashlib.sha256(document).hexdigest()


def test_amendment_and_termination_need_every_party(world):
    # given
    contract = make_ppa(world)

    # when
    services.contract_amend(
        actor=world.buyer, contract_id=contract.pk, terms=ppa_terms(world, share_bp=4_000)
    )
    services.contract_agree(actor=world.buyer, contract_id=contract.pk)
    contract.refresh_from_db()
    still = (contract.version, contract.share_bp)
    services.contract_agree(actor=world.seller, contract_id=contract.pk)
    contract.refresh_from_db()
    amended = (contract.version, contract.share_bp)
    services.contract_terminate(actor=world.seller, contract_id=contract.pk)
    services.contract_agree(actor=world.seller, contract_id=contract.pk)
    contract.refresh_from_db()
    pending_status = contract.status
    services.contract_agree(actor=world.buyer, contract_id=contract.pk)
    contract.refresh_from_db()

    # then
    assert still == (1, 3_000)
    assert amended == (2, 4_000)
    assert pending_status == "active"
    assert contract.status == "terminated" and contract.ended_at is not None
    refused(
        lambda: services.contract_agree(actor=world.buyer, contract_id=contract.pk),
        "contract_state_conflict",
    )
