"""Every write of the contracts app (agreements: lifecycle and keys; execution;
settlement obligations)."""

from contracts.services.agreements import (
    agreement_document,
    contract_agree,
    contract_amend,
    contract_create,
    contract_document,
    contract_expire_due,
    contract_terminate,
    organisation_key_register,
    terms_sha256,
)
from contracts.services.execution import (
    SYSTEM,
    community_next_trigger,
    contract_dry_run,
    contract_execute,
    contract_execution_retry,
    contract_plan,
    storage_next_day,
)
from contracts.services.group import contracts_execute_issuance
from contracts.services.obligations import (
    SETTLEMENT_HANDLERS,
    obligation_pay,
    obligation_retry,
    obligation_settle,
    settlement_obligations_settle_open,
)

__all__ = [
    "SETTLEMENT_HANDLERS",
    "SYSTEM",
    "agreement_document",
    "community_next_trigger",
    "contract_agree",
    "contract_amend",
    "contract_create",
    "contract_document",
    "contract_dry_run",
    "contract_execute",
    "contract_execution_retry",
    "contract_expire_due",
    "contract_plan",
    "contract_terminate",
    "contracts_execute_issuance",
    "obligation_pay",
    "obligation_retry",
    "obligation_settle",
    "organisation_key_register",
    "settlement_obligations_settle_open",
    "storage_next_day",
    "terms_sha256",
]
