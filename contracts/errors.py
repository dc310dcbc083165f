"""Contract refusals: each a code and an HTTP status; nothing changed when raised."""

from registry.errors import Conflict, InvalidInput, NotFound, PermissionDenied


class ContractNotFound(NotFound):
    code = "contract_not_found"
    default_detail = "No such contract, or it is not visible to you."


class UnknownContractKind(InvalidInput):
    code = "unknown_contract_kind"
    default_detail = "No contract kind of this name."


class InvalidTerms(InvalidInput):
    code = "invalid_terms"
    default_detail = "The contract terms are not valid."


class TermsUnmet(InvalidTerms):
    """Terms of the kind's shape that the registry's data or a comparison of two fields
    refuses: an account, device or community that does not exist or does not fit the
    contract, an end not after the start (what the schema cannot state)."""

    code = "terms_unmet"
    default_detail = "The contract terms do not fit the registry's accounts, devices or dates."


class NotContractParty(PermissionDenied):
    code = "not_contract_party"
    default_detail = "Only an admin or operator of a party organisation may do this."


class AlreadyAgreed(Conflict):
    code = "already_agreed"
    default_detail = "Your organisation already agreed to this version."


class ContractStateConflict(Conflict):
    code = "contract_state_conflict"
    default_detail = "The contract is not in a state that allows this."


class OverlappingClaims(Conflict):
    code = "overlapping_claims"
    default_detail = "Active contracts would claim more than 100% of the same output."


class BadSignature(InvalidInput):
    code = "bad_signature"
    default_detail = "The signature does not verify over the agreement document."


class KeyNotFound(NotFound):
    code = "key_not_found"
    default_detail = "No such active key of your organisation."


class KeyExists(Conflict):
    code = "key_exists"
    default_detail = "This key is already registered for the organisation."


class ExecutionNotFound(NotFound):
    code = "execution_not_found"
    default_detail = "No such execution, or it is not visible to you."


class TriggerNotApplicable(InvalidInput):
    code = "trigger_not_applicable"
    default_detail = "This contract does not act on this trigger."


class ExecutionNotRetryable(Conflict):
    code = "execution_not_retryable"
    default_detail = "Only a failed or parked execution of an active contract can be retried."


class ExecutionShortfall(Conflict):
    code = "execution_shortfall"
    default_detail = "The source account no longer holds the units the contract takes."


class ObligationNotFound(NotFound):
    code = "obligation_not_found"
    default_detail = "No such settlement obligation, or it is not visible to you."


class NotPayer(PermissionDenied):
    code = "not_payer"
    default_detail = "Only an admin or operator of the paying organisation may pay this."


class AlreadySettled(Conflict):
    code = "already_settled"
    default_detail = "This has been paid already."


class SettlementUnavailable(Conflict):
    code = "settlement_unavailable"
    default_detail = "No settlement handler paid this (is the market installed?)."


class StoragePeriodOutOfOrder(Conflict):
    code = "storage_period_out_of_order"
    default_detail = "A battery's days execute in order: execute the next day first."


class StorageReadingsIncomplete(Conflict):
    code = "storage_readings_incomplete"
    default_detail = (
        "The battery's charge and discharge readings do not cover the whole day (hourly or"
        " finer, none spanning two hours)."
    )


class StorageCapacityExceeded(Conflict):
    code = "storage_capacity_exceeded"
    default_detail = "The charge would take the state of charge above the battery's capacity."


class StorageDischargeExceedsCharge(Conflict):
    code = "storage_discharge_exceeds_charge"
    default_detail = "The metered discharge is more than the battery's state of charge."


class MembershipChanged(Conflict):
    code = "membership_changed"
    default_detail = "The community's members for this period are not the ones who agreed."


class AllocationKeyChanged(Conflict):
    code = "allocation_key_changed"
    default_detail = "The community's allocation key is not the one its members agreed to."


class NoCertificates(Conflict):
    code = "no_certificates"
    default_detail = "No certificates of the community's devices to distribute in this period."


class IndexPriceUnavailable(Conflict):
    code = "index_price_unavailable"
    default_detail = (
        "The energy market cleared no price for a period the contract takes, and its index"
        " has no fallback price."
    )
