"""Refusals of the charging services: a code and an HTTP status each (nothing is changed)."""

from registry.errors import Conflict, InvalidInput, NotFound, PermissionDenied


class InvalidTransactionEvent(InvalidInput):
    code = "invalid_transaction_event"
    default_detail = "The TransactionEvent does not match the OCPP 2.0.1 schema."


class TransactionEventEnergyInvalid(InvalidInput):
    """An energy register sample that is not a whole, non-negative number of Wh once its
    unit and multiplier are applied (a rule across fields the OCPP schema does not state)."""

    code = "transaction_event_energy_invalid"
    default_detail = "An energy sample is not a whole, non-negative number of Wh."


class InvalidTariff(InvalidInput):
    code = "invalid_tariff"
    default_detail = "The tariff is not a valid OCPI 2.2.1 tariff this registry can price."


class NegativeTariff(InvalidInput):
    code = "tariff_negative"
    default_detail = "A tariff with a negative price could produce a negative bill."


class BillOutOfRange(InvalidInput):
    code = "bill_out_of_range"
    default_detail = (
        "At this tariff the session's energy and time come to more than a bill holds "
        "(2**63 - 1 minor units)."
    )


class SessionTooLong(InvalidInput):
    code = "session_too_long"
    default_detail = "A charging session's meter values lie within 31 days of its start."


class InvalidStation(InvalidInput):
    code = "invalid_station"
    default_detail = "The station's device, meter or key is not usable."


class MeterDecreasing(InvalidInput):
    code = "meter_value_decreasing"
    default_detail = "A meter value is lower than the one before it."


class EventTimeBackwards(InvalidInput):
    code = "event_time_backwards"
    default_detail = "An event is older than the session's last event."


class OcmfUnsigned(InvalidInput):
    code = "ocmf_unsigned"
    default_detail = "The OCMF record carries no usable signature."


class OcmfBadSignature(InvalidInput):
    code = "ocmf_bad_signature"
    default_detail = "The OCMF signature does not verify with the station's public key."


class OcmfInvalid(InvalidInput):
    code = "ocmf_invalid"
    default_detail = "The OCMF record is not a begin and end reading of one transaction."


class UnknownToken(InvalidInput):
    code = "unknown_id_token"
    default_detail = "The idToken is not registered to any organisation."


class NotStationOperator(PermissionDenied):
    code = "not_station_operator"
    default_detail = "You do not act for the organisation that operates this station."


class NotSessionParty(PermissionDenied):
    code = "not_session_party"
    default_detail = "You act neither for the station's operator nor for the driver."


class AccountNotUsable(PermissionDenied):
    code = "account_not_usable"
    default_detail = "Certificates for the receipt come from an open account you act for."


class StationNotFound(NotFound):
    code = "station_not_found"
    default_detail = "No such charging station."


class SessionNotFound(NotFound):
    code = "session_not_found"
    default_detail = "No such charging session."


class BillNotFound(NotFound):
    code = "bill_not_found"
    default_detail = "No such bill."


class TariffNotFound(NotFound):
    code = "tariff_not_found"
    default_detail = "No such tariff."


class StopWithoutStart(Conflict):
    code = "stop_without_start"
    default_detail = "No started session has this transactionId."


class SessionAlreadyStarted(Conflict):
    code = "session_already_started"
    default_detail = "A session with this transactionId was already started at this station."


class SessionEnded(Conflict):
    code = "session_ended"
    default_detail = "The session has ended and been billed."


class DuplicateSeqNo(Conflict):
    code = "duplicate_seq_no"
    default_detail = "This seqNo was already received for the session."


class TokenExists(Conflict):
    code = "token_exists"
    default_detail = "This idToken is already registered."


class StationExists(Conflict):
    code = "station_exists"
    default_detail = "The device, meter or EVSE id already belongs to a station."


class SessionNotBilled(Conflict):
    code = "session_not_billed"
    default_detail = "The session has not ended yet."


class ReceiptExists(Conflict):
    code = "receipt_exists"
    default_detail = "The session already has its renewable receipt."


class TransactionNotStarted(Conflict):
    code = "transaction_not_started"
    default_detail = "No started session has this transactionId."


class NotBillPayer(PermissionDenied):
    code = "not_bill_payer"
    default_detail = "Only an admin or operator of the billed organisation may pay this bill."


class BillAlreadySettled(Conflict):
    code = "already_settled"
    default_detail = "This bill has been paid already."


class SettlementUnavailable(Conflict):
    code = "settlement_unavailable"
    default_detail = "No settler paid this bill (is the market installed?)."
