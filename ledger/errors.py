from registry.errors import DomainError, InvalidInput, NotFound


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


class LedgerCorrupted(LedgerError):
    code = "ledger_corrupted"
    default_detail = "The stored tree does not agree with itself; run `manage.py verify_ledger`."


class LedgerEntryNotFound(NotFound):
    code = "ledger_entry_not_found"
    default_detail = "No ledger entry has this sequence number (yet)."


class CheckpointNotFound(NotFound):
    code = "checkpoint_not_found"
    default_detail = "No checkpoint has this tree size."


class TreeSizeExceeded(InvalidInput):
    code = "tree_size_exceeded"
    default_detail = "The requested tree size is larger than the ledger."


class InvalidProofRequest(InvalidInput):
    code = "invalid_proof_request"
    default_detail = "No such proof: check the sequence number and tree sizes."


class UnknownSubjectKind(NotFound):
    code = "unknown_subject_kind"
    default_detail = "No ledger event names subjects of this kind (see ledger/EVENTS.md)."


class SigningFenced(LedgerError):
    code = "signing_fenced"
    status = 409
    default_detail = (
        "This database is not the one the log was signed from (a restored backup, a new "
        "database or a promoted standby): no checkpoint is signed until `manage.py "
        "ledger_reconcile` has checked the peers' copies of the log."
    )

    def __init__(self, *, recorded: str, current: str) -> None:
        super().__init__(recorded=recorded, current=current)


class SigningKeyUnavailable(LedgerError):
    code = "signing_key_unavailable"
    status = 409
    default_detail = (
        "The log key current at this tree size is not configured in this process: set "
        "REGISTRY_SIGNING_KEY or REGISTRY_NEXT_SIGNING_KEY to it (docs/operations.md, "
        "'Rotating the log key')."
    )


class KeyRotationRefused(LedgerError):
    code = "key_rotation_refused"
    status = 409
    default_detail = "The log key cannot be rotated now."


class TailRecoveryRefused(LedgerError):
    code = "tail_recovery_refused"
    status = 409
    default_detail = (
        "The lost tail of the log cannot be recovered from this copy; nothing was changed."
    )
