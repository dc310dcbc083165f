"""One builder per contract ledger event kind (ledger/EVENTS.md, section contracts)."""

from typing import Any

from contracts.models import Agreement, Contract, ContractExecution, SettlementObligation

CREATED = "contract.created"
AGREED = "contract.agreed"
ACTIVATED = "contract.activated"
AMENDMENT_PROPOSED = "contract.amendment_proposed"
AMENDED = "contract.amended"
TERMINATION_PROPOSED = "contract.termination_proposed"
TERMINATED = "contract.terminated"
EXPIRED = "contract.expired"
EXECUTED = "contract.executed"
EXECUTION_FAILED = "contract.execution_failed"
KEY_REGISTERED = "contract.key_registered"
OBLIGATION_RETRIED = "contract.obligation_retried"


def subjects(contract: Contract, *extra: Any, party_orgs: list[int] | None = None) -> list[Any]:
    """The contract and every party organisation (`party_orgs`, sorted, when the caller
    read them already), then whatever else changed."""
    orgs = party_ids(contract) if party_orgs is None else party_orgs
    parties = [("organisation", org_id) for org_id in orgs]
    return [contract, *parties, *extra]


def party_ids(contract: Contract) -> list[int]:
    return sorted(contract.parties.values_list("organisation_id", flat=True))


def contract_data(contract: Contract) -> dict[str, Any]:
    return {
        "contract_id": contract.pk,
        "kind": contract.kind,
        "status": contract.status,
        "version": contract.version,
        "terms": contract.terms,
        "terms_sha256": contract.terms_sha256,
        "start_at": contract.start_at,
        "end_at": contract.end_at,
        "on_failure": contract.on_failure,
        "parties": [
            {"organisation_id": org, "role": role}
            for org, role in contract.parties.order_by("pk").values_list("organisation_id", "role")
        ],
    }


def agreement_data(agreement: Agreement) -> dict[str, Any]:
    return {
        "organisation_id": agreement.organisation_id,
        "version": agreement.version,
        "action": agreement.action,
        "document_sha256": agreement.document_sha256,
        "key_id": agreement.key_id,
        "signature": agreement.signature or None,
    }


def execution_data(execution: ContractExecution) -> dict[str, Any]:
    return {
        "contract_id": execution.contract_id,
        "execution_id": execution.pk,
        "trigger": execution.trigger,
        "version": execution.version,
        "status": execution.status,
        "attempts": execution.attempts,
        "reason_code": execution.reason_code or None,
        "result": execution.result,
    }


def obligation_retried_data(
    obligation: SettlementObligation, previous_reason: str
) -> dict[str, Any]:
    return {
        "contract_id": obligation.contract_id,
        "obligation_id": obligation.pk,
        "execution_id": obligation.execution_id,
        "status": obligation.status,
        "previous_reason_code": previous_reason or None,
        "reason_code": obligation.reason_code or None,
    }
