from registry.errors import DomainError


class LedgerError(DomainError):
    code = "ledger_error"
    status = 500
    default_detail = "The ledger refused the event."


class LedgerAppendOutsideTransaction(LedgerError):
    code = "ledger_append_outside_transaction"
    default_detail = (
        "ledger_append must run inside the caller's transaction.atomic() block, "
        "so that the event and the change commit or roll back together."
    )
