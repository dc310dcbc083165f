from registry.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied


class DeviceInconsistent(InvalidInput):
    """Each value has a valid form, but together with the registry's data or with each
    other they describe no device (see `extra.fields`)."""

    code = "device_inconsistent"
    default_detail = "The device's values do not fit the registry's data or each other."


class GridAreaNotFound(NotFound):
    code = "grid_area_not_found"
    default_detail = "No such grid area."


class GridAreaExists(Conflict):
    code = "grid_area_exists"
    default_detail = "A grid area with this code exists already."


class DeviceNotFound(NotFound):
    code = "device_not_found"
    default_detail = "No such device, or it is not visible to you."


class NotDeviceOperator(PermissionDenied):
    code = "not_device_operator"
    default_detail = "You do not act for the organisation that registered this device."


class NotReadingSubmitter(PermissionDenied):
    code = "not_reading_submitter"
    default_detail = (
        "Only an operator or administrator of an approved producer organisation submits readings."
    )


class DeviceStatusConflict(Conflict):
    code = "device_status_conflict"
    default_detail = "The device is not in a state that allows this."


class SharesInvalid(InvalidInput):
    code = "shares_invalid"
    default_detail = "Co-owner shares must be positive fractions that sum to exactly 1."


class OwnerInvalid(InvalidInput):
    code = "owner_invalid"
    default_detail = "A co-owner must be an approved organisation with an open account of its own."


class MeterNotFound(NotFound):
    code = "meter_not_found"
    default_detail = "No such meter, or it is not visible to you."


class MeterExists(Conflict):
    code = "meter_exists"
    default_detail = "A meter with this serial is registered already."


class MeterStatusConflict(Conflict):
    code = "meter_status_conflict"
    default_detail = "The meter is not in a state that allows this."


class MeterKeyInvalid(InvalidInput):
    code = "meter_key_invalid"
    default_detail = "The public key must be 32 bytes of Ed25519, base64 or hex encoded."


class MeterKeyRequired(InvalidInput):
    code = "meter_key_required"
    default_detail = "This device requires signed readings: register the meter with a public key."


class MeterKeyConflict(Conflict):
    code = "meter_key_conflict"
    default_detail = "The new key's validity would overlap readings or keys already recorded."


class CounterResetConflict(Conflict):
    code = "counter_reset_conflict"
    default_detail = "A counter reset must come after the meter's last counter reading."


class ReadingsMalformed(InvalidInput):
    code = "readings_malformed"
    default_detail = "The upload cannot be read as readings."


class ReadingsRejected(InvalidInput):
    """Some rows are invalid; the whole batch is refused (see extra.errors)."""

    code = "readings_rejected"
    default_detail = "The batch was rejected: some rows are invalid. Nothing was stored."


class ReadingsConflict(Conflict):
    """Rows clash with readings already accepted or held; the whole batch is refused."""

    code = "readings_conflict"
    default_detail = (
        "The batch was rejected: some rows conflict with readings already recorded. "
        "Nothing was stored."
    )


class ReadingsUploadTooLarge(DomainError):
    code = "upload_too_large"
    status = 413
    default_detail = "The upload is larger than the registry accepts in one request."


class ReadingNotFound(NotFound):
    code = "reading_not_found"
    default_detail = "No such reading, or it is not visible to you."


class ReadingBatchNotFound(NotFound):
    code = "reading_batch_not_found"
    default_detail = "No such reading batch, or it is not visible to you."


class ReadingBatchNotHeld(Conflict):
    code = "reading_batch_not_held"
    default_detail = "Only a batch held for review can be accepted or rejected."


class ReadingsAlreadyIssued(Conflict):
    code = "readings_already_issued"
    default_detail = "Some readings are issued already (or do not exist)."


class BatchRootMismatch(DomainError):
    """The stored readings no longer hash to the root the ledger recorded: evidence of
    tampering with the readings table."""

    code = "batch_root_mismatch"
    status = 500
    default_detail = "The batch's stored readings do not match its recorded Merkle root."


class OnboardingFileInvalid(InvalidInput):
    """The CSV document inside the request's `csv` text: its columns, its number of rows."""

    code = "onboarding_file_invalid"
    default_detail = "The onboarding file's columns or rows are not as documented."


class OnboardingRejected(InvalidInput):
    code = "onboarding_rejected"
    default_detail = "Some rows of the onboarding file are refused; nothing was registered."


class MeterTimeInvalid(InvalidInput):
    """A meter event's time that does not fit the device or the meter's history."""

    code = "meter_time_invalid"
    default_detail = "The time does not fit the device's interval or the meter's history."


class EicCheckInvalid(InvalidInput):
    code = "eic_check_invalid"
    default_detail = "The EIC code's check character is wrong."
