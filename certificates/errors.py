"""Errors of the certificate services: each has a code, an HTTP status and a detail."""

from registry.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied


class BundleNotFound(NotFound):
    code = "bundle_not_found"
    default_detail = "No such certificate bundle."


class TransferNotFound(NotFound):
    code = "transfer_not_found"
    default_detail = "No such transfer, or it is not visible to you."


class IssuanceRequestNotFound(NotFound):
    code = "issuance_request_not_found"
    default_detail = "No such issuance request, or it is not visible to you."


class RetirementNotFound(NotFound):
    code = "retirement_not_found"
    default_detail = "No such retirement statement."


class DeviceNotFound(NotFound):
    code = "device_not_found"
    default_detail = "No such device."


class AccountNotFoundForTransfer(NotFound):
    code = "account_not_found"
    default_detail = "No account with this number."


class InvalidVolume(InvalidInput):
    code = "invalid_volume"
    default_detail = "The volume must be a positive whole number of Wh."


class InvalidPeriod(InvalidInput):
    code = "invalid_period"
    default_detail = "The period is not valid."


class BeneficiaryRequired(InvalidInput):
    code = "beneficiary_required"
    default_detail = "A retirement needs a beneficiary name and country."


class DuplicateBundle(InvalidInput):
    code = "duplicate_bundle"
    default_detail = "A bundle appears more than once in the request."


class ReasonRequired(InvalidInput):
    code = "reason_required"
    default_detail = "A reason is required."


class NotBundleHolder(PermissionDenied):
    code = "not_bundle_holder"
    default_detail = "You do not act for the account that holds this bundle."


class NotDeviceProducer(PermissionDenied):
    code = "not_device_producer"
    default_detail = "You do not act for the organisation that operates this device."


class NotTransferParty(PermissionDenied):
    code = "not_transfer_party"
    default_detail = "Only the receiving (accept, reject) or sending (withdraw) side may do this."


class BundleNotActive(Conflict):
    code = "bundle_not_active"
    default_detail = (
        "The bundle is not active (it was split, moved, retired, expired or withdrawn)."
    )


class BundleExpired(Conflict):
    code = "bundle_expired"
    default_detail = "The bundle is past its expiry date and cannot move."


class InsufficientVolume(Conflict):
    code = "insufficient_volume"
    default_detail = "The bundle holds less than the requested volume."


class AccountClosed(Conflict):
    code = "account_closed"
    default_detail = "The receiving account is closed."


class SameAccount(Conflict):
    code = "same_account"
    default_detail = "The bundle is already held by this account."


class TransferNotPending(Conflict):
    code = "transfer_not_pending"
    default_detail = "The transfer is no longer pending."


class DeviceCannotIssue(Conflict):
    code = "device_cannot_issue"
    default_detail = "The device is not approved for issuance."


class DoubleIssuance(Conflict):
    code = "double_issuance"
    default_detail = "Certificates were already issued for an overlapping period of this device."


class NothingToIssue(Conflict):
    code = "nothing_to_issue"
    default_detail = "There are no accepted, unissued readings that complete a period here."


class OwnershipIncomplete(Conflict):
    code = "ownership_incomplete"
    default_detail = (
        "The device's owners' shares do not add up to one, or an owner has no open account."
    )


class IssuanceRequestNotPending(Conflict):
    code = "issuance_request_not_pending"
    default_detail = "The issuance request was already decided."


class ExportDestinationUnknown(InvalidInput):
    code = "export_destination_unknown"
    default_detail = "The destination is not an active trading-partner registry of this one."


class ExportNotFound(NotFound):
    code = "export_not_found"
    default_detail = "No such export, or it is not visible to you."


class ImportNotFound(NotFound):
    code = "import_not_found"
    default_detail = "No such import, or it is not visible to you."


class ExportAlreadySettled(Conflict):
    code = "export_already_settled"
    default_detail = "The export was already settled by another receipt."


class ExportAlreadyImported(Conflict):
    code = "export_already_imported"
    default_detail = "This export was already received here; it is never imported twice."


class ExportNotForThisRegistry(InvalidInput):
    code = "export_not_for_this_registry"
    default_detail = "The export names another registry as its destination."


class ImportUnavailable(Conflict):
    code = "import_unavailable"
    default_detail = "This registry cannot import certificates now (it has no issuing body)."


class BundleNotReserved(Conflict):
    code = "bundle_not_reserved"
    default_detail = "The bundle is not reserved, so there is nothing to release or deliver."


class UnitsChangeOutsideTransaction(DomainError):
    code = "units_change_outside_transaction"
    status = 500
    default_detail = (
        "Reserving, releasing and delivering units must run inside the caller's "
        "transaction.atomic() block, with the caller's ledger event."
    )


# Account kinds (README, "Accounts"): trading accounts send and receive; issuance accounts
# receive new certificates and send them on; retirement accounts are final.
class AccountRefusesTransfers(Conflict):
    code = "account_refuses_transfers"
    default_detail = (
        "Only trading accounts receive transfers: issuance accounts are filled by issuance, "
        "and retirement accounts by nothing but a retirement. Transfer to a trading account, "
        "or retire the certificates (POST …/retirements/)."
    )


class RetirementAccountFinal(Conflict):
    code = "retirement_account_final"
    default_detail = (
        "Certificates in a retirement account do not leave it: they can only be retired there."
    )


class AccountRefusesIssuance(Conflict):
    code = "account_refuses_issuance"
    default_detail = "A retirement account receives no new certificates."


class NothingToWithdraw(Conflict):
    code = "nothing_to_withdraw"
    default_detail = "The device has no certificates in that period that are not withdrawn already."


class PeriodCutsBundle(InvalidInput):
    code = "period_cuts_bundle"
    default_detail = (
        "The period starts or ends inside a bundle's production period; a bundle's units "
        "are not tied to hours within it, so widen the period to the bundles' boundaries."
    )
