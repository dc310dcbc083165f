"""Replay of contracts: every contract, agreement, execution and obligation re-derived from
the log alone agrees with the tables, and a row changed behind the services is named."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from nacl.signing import SigningKey

from contracts import services
from contracts.kinds.retirement import STANDING_RETIREMENT
from contracts.kinds.shares import STANDING_TRANSFER
from contracts.models import Agreement, Contract, ContractExecution, SettlementObligation
from contracts.replay_executions import replay_contracts
from ledger.canonical import canonical_bytes
from ledger.models import PendingEvent
from ledger.services import ledger_integrate
from registry.errors import Conflict
from tests.certificates.factories import DAY
from tests.contracts.conftest import END, START, issue, make_forward, make_ppa, ppa_terms
from tests.factories import AccountFactory
from tests.market.factories import deposit

pytestmark = pytest.mark.django_db

PERIOD = f"{DAY.year:04d}-{DAY.month:02d}"


def executed_world(world):
    """A PPA (amended once, the seller signing with its key; its buyer funded) and a
    standing transfer, both executed on an issuance; a standing retirement executed for the
    month; a PPA left as a draft; the standing transfer's termination proposed."""
    deposit(world.buyer_account.organisation_id, 10_000)
    ppa = make_ppa(world, share_bp=3_000, price_per_mwh_minor=5_000)
    services.contract_amend(
        actor=world.buyer, contract_id=ppa.pk, terms=ppa_terms(world, share_bp=4_000)
    )
    services.contract_agree(actor=world.buyer, contract_id=ppa.pk)
    signing = SigningKey.generate()
    key = services.organisation_key_register(
        actor=world.seller,
        organisation_id=world.seller_account.organisation_id,
        name="board",
        public_key=signing.verify_key.encode().hex(),
    )
    document = services.contract_document(contract_id=ppa.pk)
    services.contract_agree(
        actor=world.seller,
        contract_id=ppa.pk,
        key_id=key.pk,
        signature=signing.sign(document).signature.hex(),
    )
    own = AccountFactory(organisation=world.seller_account.organisation)
    forward = make_forward(world, own, 2_500)
    issuance = issue(world, hours=4)
    for contract in (ppa, forward):
        services.contract_execute(contract_id=contract.pk, trigger=f"issuance:{issuance.pk}")
    retire = services.contract_create(
        actor=world.seller,
        kind=STANDING_RETIREMENT,
        terms={
            "account": world.seller_account.number,
            "beneficiary_name": "Plant Ltd",
            "beneficiary_country": "DE",
            "purpose": "disclosure",
            "max_wh_per_month": 500,
        },
        start_at=START,
        end_at=END,
    )
    services.contract_agree(actor=world.seller, contract_id=retire.pk)
    services.contract_execute(contract_id=retire.pk, trigger=f"period:{PERIOD}", now=END)
    make_ppa(world, active=False, share_bp=1_000)
    # a termination proposed and not yet agreed: the proposal waits on the row
    services.contract_terminate(actor=world.seller, contract_id=forward.pk)
    return ppa


def test_the_replay_agrees_after_ppa_and_standing_order_executions(world):
    # given
    ppa = executed_world(world)
    assert ContractExecution.objects.filter(status="applied").count() == 3
    obligation = SettlementObligation.objects.get(contract=ppa)
    assert obligation.status == "settled"
    assert Agreement.objects.filter(contract=ppa, version=2).exclude(signature="").count() == 1
    assert Contract.objects.filter(kind=STANDING_TRANSFER).get().proposal["action"] == "terminate"

    # when
    report = replay_contracts()

    # then: every row re-derived, nothing differs
    assert report.ok, report.problems
    assert report.tables == {
        "contract": 4,
        "agreement": 6,
        "execution": 3,
        "obligation": 1,
        "contract key": 1,
    }
    # and the operator's command agrees, with the contracts' summary
    ledger_integrate()
    out = io.StringIO()
    call_command("replay_ledger", stdout=out)
    assert "3 executions" in out.getvalue()
    assert "the tables agree" in out.getvalue()


def test_an_obligation_paid_after_its_execution_replays_as_settled(world):
    # given: an execution whose buyer could not pay, then pays on request
    ppa = make_ppa(world)
    issuance = issue(world)
    services.contract_execute(contract_id=ppa.pk, trigger=f"issuance:{issuance.pk}")
    obligation = SettlementObligation.objects.get(contract=ppa)
    assert (obligation.status, obligation.reason_code) == ("open", "insufficient_funds")
    assert replay_contracts().ok
    deposit(world.buyer_account.organisation_id, 1_000)

    # when
    services.obligation_pay(actor=world.buyer, obligation_id=obligation.pk)

    # then: the market's payment event settles it in the replay too
    report = replay_contracts()
    assert report.ok, report.problems
    SettlementObligation.objects.filter(pk=obligation.pk).update(status="open", reference="")
    assert replay_contracts().problem_count == 1


def _only_problem(edit) -> str:
    edit()
    report = replay_contracts()
    assert report.problem_count == 1, report.problems
    return report.problems[0]


@pytest.mark.parametrize(
    "name, edit, expected",
    [
        (
            "execution result",
            lambda ppa: ContractExecution.objects.filter(contract=ppa).update(
                result={"volume_wh": 1}
            ),
            "execution {execution}: result ledger",
        ),
        (
            "obligation amount",
            lambda ppa: SettlementObligation.objects.filter(contract=ppa).update(amount_minor=999),
            "obligation {obligation}: amount_minor ledger",
        ),
        (
            "obligation status",
            lambda ppa: SettlementObligation.objects.filter(contract=ppa).update(status="open"),
            "obligation {obligation}: status ledger 'settled', table 'open'",
        ),
        (
            "contract status",
            lambda ppa: Contract.objects.filter(pk=ppa.pk).update(status="expired"),
            "contract {contract}: status ledger 'active', table 'expired'",
        ),
        (
            "agreement",
            lambda ppa: Agreement.objects.filter(
                contract=ppa, version=1, organisation=ppa.parties.get(role="buyer").organisation
            ).update(document_sha256="0" * 64),
            "agreement ({contract}, 1, {buyer}): document_sha256 ledger",
        ),
        (
            "signature",
            lambda ppa: (
                Agreement.objects.filter(contract=ppa, version=2)
                .exclude(signature="")
                .update(signature="ab" * 64)
            ),
            "agreement ({contract}, 2, {seller}): signature ledger",
        ),
        (
            "proposal",
            lambda ppa: Contract.objects.filter(kind=STANDING_TRANSFER).update(proposal=None),
            ": proposal ledger {{",
        ),
        (
            "contract share",
            lambda ppa: Contract.objects.filter(pk=ppa.pk).update(share_bp=9_000),
            "contract {contract}: share_bp ledger 4000, table 9000",
        ),
    ],
)
def test_a_row_changed_behind_the_services_is_named(world, name, edit, expected):
    # given
    ppa = executed_world(world)
    assert replay_contracts().ok
    names = {
        "contract": ppa.pk,
        "execution": ContractExecution.objects.get(contract=ppa).pk,
        "obligation": SettlementObligation.objects.get(contract=ppa).pk,
        "buyer": world.buyer_account.organisation_id,
        "seller": world.seller_account.organisation_id,
    }

    # when
    problem = _only_problem(lambda: edit(ppa))

    # then: the one difference names the row and the field
    assert expected.format(**names) in problem, (name, problem)
    with pytest.raises(CommandError):
        call_command("replay_ledger", stdout=io.StringIO(), stderr=io.StringIO())


def test_an_execution_marked_parked_and_an_agreement_nobody_gave_are_caught(world):
    # given
    ppa = executed_world(world)
    execution = ContractExecution.objects.filter(contract__kind=STANDING_RETIREMENT).get()
    agreement = Agreement.objects.filter(contract=ppa).first()

    # when: an agreement nobody gave appears for a version not yet proposed
    Agreement.objects.create(
        contract=ppa,
        version=9,
        action="terminate",
        organisation_id=agreement.organisation_id,
        agreed_by=agreement.agreed_by,
        agreed_at=agreement.agreed_at,
        document_sha256="1" * 64,
    )
    ContractExecution.objects.filter(pk=execution.pk).update(status="parked", attempts=2)

    # then
    report = replay_contracts()
    assert report.problem_count == 2, report.problems
    assert any(f"execution {execution.pk}: attempts" in p for p in report.problems)
    assert any(f"agreement ({ppa.pk}, 9," in p and "ledger None" in p for p in report.problems)


def test_an_event_whose_obligation_is_not_the_terms_price_is_caught(world):
    # given: an executed PPA whose event and row both say the buyer owes 999 (a forged
    # event, as a registry that rewrote its own log before numbering it would hold)
    ppa = executed_world(world)
    obligation = SettlementObligation.objects.get(contract=ppa)
    pending, event = next(
        (row, json.loads(bytes(row.event)))
        for row in PendingEvent.objects.filter(kind="contract.executed")
        if b'"obligation"' in bytes(row.event)
    )
    event["data"]["result"]["obligation"]["amount_minor"] = 999
    PendingEvent.objects.filter(pk=pending.pk).update(event=canonical_bytes(event))
    ContractExecution.objects.filter(contract=ppa).update(result=event["data"]["result"])
    SettlementObligation.objects.filter(pk=obligation.pk).update(amount_minor=999)

    # when
    report = replay_contracts()

    # then: the amount is re-derived from the volume and the price of the terms in force
    # (4,000 bp of the issuance at 50.00/MWh), and the market's payment no longer matches
    expected = (obligation.volume_wh * 5_000 + 500_000) // 1_000_000
    assert expected != 999
    assert any(
        f"obligation {obligation.pk}: {obligation.volume_wh} Wh at the terms' price 5000 is"
        f" {expected}" in p
        for p in report.problems
    ), report.problems
    assert any("is not what is owed" in p for p in report.problems), report.problems
    assert report.problem_count == 2, report.problems


def test_an_open_obligations_reason_is_replayed_and_a_hand_edit_of_it_is_caught(world):
    # given an obligation left open (no funds), retried by the tick for another reason
    ppa = make_ppa(world)
    issuance = issue(world)
    services.contract_execute(contract_id=ppa.pk, trigger=f"issuance:{issuance.pk}")
    obligation = SettlementObligation.objects.get(contract=ppa)

    class AccountFrozen(Conflict):
        code = "settlement_account_frozen"

    def frozen(obligation):
        raise AccountFrozen()

    handlers = services.SETTLEMENT_HANDLERS[:]
    services.SETTLEMENT_HANDLERS[:] = [frozen]
    try:
        services.settlement_obligations_settle_open()
    finally:
        services.SETTLEMENT_HANDLERS[:] = handlers
    obligation.refresh_from_db()
    assert obligation.reason_code == "settlement_account_frozen"
    report = replay_contracts()
    assert report.ok, report.problems

    # when the reason is edited behind the services
    SettlementObligation.objects.filter(pk=obligation.pk).update(reason_code="insufficient_funds")

    # then the replay names the row and the field
    report = replay_contracts()
    assert report.problem_count == 1, report.problems
    assert (
        f"obligation {obligation.pk}: reason_code ledger 'settlement_account_frozen',"
        " table 'insufficient_funds'" in report.problems[0]
    )
