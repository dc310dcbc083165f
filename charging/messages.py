"""Incoming session data: OCPP 2.0.1 TransactionEvent requests and OCMF signed records.

TransactionEvent requests are validated against the JSON schema the `ocpp` package ships
(the OCA's own `TransactionEventRequest.json`), so what we accept is what the spec allows.
OCMF records are parsed and their signatures checked by `pyocmf` (ECDSA over the payload
bytes, with the public key registered for the station's meter); a record without a
signature, or whose signature does not verify, is refused.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import warnings
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

import jsonschema
from django.utils.dateparse import parse_datetime

from charging import errors
from ledger.canonical import MAX_SAFE_INTEGER
from registry.datetimes import DATE_TIME, DATE_TIME_HINT, DATE_TIME_RE

ENERGY_REGISTER = "Energy.Active.Import.Register"
UNIT_SCALE = {"Wh": Decimal(1), "kWh": Decimal(1000)}


def _transaction_event_json_schema() -> dict[str, Any]:
    text = resources.files("ocpp.v201.schemas").joinpath("TransactionEventRequest.json")
    return json.loads(text.read_text(encoding="utf-8"))


@functools.cache
def _validator() -> jsonschema.Draft6Validator:
    return jsonschema.Draft6Validator(_transaction_event_json_schema())


# JSON Schema keywords of the OCA file that OpenAPI 3.0 does not have (or that say nothing).
_NOT_OPENAPI = {"$schema", "comment", "javaType", "additionalItems", "definitions"}


@functools.cache
def transaction_event_openapi_schema() -> dict[str, Any]:
    """The OCA TransactionEventRequest schema as an OpenAPI 3.0 schema: definitions inlined
    (the file has no recursion), and keywords OpenAPI lacks left out. The units this
    registry reads energy in are narrowed to Wh and kWh, as transaction_event_parse
    requires."""
    document = _transaction_event_json_schema()
    definitions = document["definitions"]

    def convert(node: Any) -> Any:
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return convert(definitions[node["$ref"].removeprefix("#/definitions/")])
        converted = {key: convert(value) for key, value in node.items() if key not in _NOT_OPENAPI}
        if node.get("format") == "date-time":  # the times `_when` takes
            converted["pattern"] = DATE_TIME
        return converted

    schema = convert(document)
    unit = schema["properties"]["meterValue"]["items"]["properties"]["sampledValue"]["items"][
        "properties"
    ]["unitOfMeasure"]["properties"]["unit"]
    unit["enum"] = sorted(UNIT_SCALE)
    schema["properties"]["seqNo"] |= {"minimum": 0, "maximum": MAX_SEQ_NO}
    for stored in _stored_texts(schema["properties"]):  # `_text_problem` refuses NUL there
        stored["pattern"] = NO_NUL
    return schema


def _stored_texts(properties: dict[str, Any]) -> list[Any]:
    """The texts of a message the registry stores or looks up (the rest, customData
    included, it reads not at all)."""
    return [
        properties["transactionInfo"]["properties"]["transactionId"],
        properties["idToken"]["properties"]["idToken"],
    ]


@dataclass(frozen=True)
class TransactionEvent:
    """The parts of a TransactionEvent request the registry uses."""

    event_type: str  # Started | Updated | Ended
    transaction_id: str
    seq_no: int
    timestamp: dt.datetime
    id_token: str | None
    id_token_type: str | None
    meter_wh: list[tuple[dt.datetime, int]]  # energy register samples, in Wh


def _when(value: str, path: str) -> dt.datetime:
    """An RFC 3339 time as the schema's pattern has it: in range, also in UTC."""
    if not isinstance(value, str) or not DATE_TIME_RE.fullmatch(value):
        raise errors.InvalidTransactionEvent(fields={path: [DATE_TIME_HINT]})
    return parse_datetime(value).astimezone(dt.UTC)


def _energy_wh(sampled: dict[str, Any], path: str) -> int | None:
    if sampled.get("measurand", ENERGY_REGISTER) != ENERGY_REGISTER:
        return None
    unit = (sampled.get("unitOfMeasure") or {}).get("unit", "Wh")
    multiplier = (sampled.get("unitOfMeasure") or {}).get("multiplier", 0)
    if unit not in UNIT_SCALE:
        raise errors.InvalidTransactionEvent(fields={path: ["energy in Wh or kWh"]})
    try:
        value = Decimal(str(sampled["value"])) * UNIT_SCALE[unit] * Decimal(10) ** multiplier
    except ArithmeticError:  # decimal.Overflow: a multiplier (an exponent) far out of range
        value = None
    if value is None or not 0 <= value < MAX_SAFE_INTEGER or value != value.to_integral_value():
        raise errors.TransactionEventEnergyInvalid(
            fields={path: ["a whole, non-negative Wh value below 2**53"]}
        )
    return int(value)


MAX_SEQ_NO = 2**31 - 1  # the sequence columns (PositiveIntegerField)
NO_NUL = "^[^\\x00]*$"


def _text_problem(message: dict[str, Any]) -> str | None:
    """The path of a stored text holding NUL or a lone surrogate, which PostgreSQL cannot
    store (the message is raw JSON: no serializer field refuses them)."""
    texts = {
        "transactionInfo.transactionId": message["transactionInfo"]["transactionId"],
        "idToken.idToken": (message.get("idToken") or {}).get("idToken", ""),
    }
    for path, text in texts.items():
        if "\x00" in text or (not text.isascii() and _has_surrogate(text)):
            return path
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def transaction_event_parse(message: Any) -> TransactionEvent:
    """Validate a TransactionEvent request (OCPP 2.0.1 schema) and pick out its values."""
    problems = sorted(_validator().iter_errors(message), key=lambda e: list(e.absolute_path))
    if problems:
        fields: dict[str, list[str]] = {}
        for problem in problems[:10]:
            path = ".".join(str(p) for p in problem.absolute_path) or "(message)"
            fields.setdefault(path, []).append(problem.message)
        raise errors.InvalidTransactionEvent(fields=fields)
    text = _text_problem(message)
    if text is not None:
        raise errors.InvalidTransactionEvent(fields={text: ["text without NUL or lone surrogates"]})
    if not 0 <= message["seqNo"] <= MAX_SEQ_NO:
        raise errors.InvalidTransactionEvent(fields={"seqNo": [f"from 0 to {MAX_SEQ_NO}"]})
    samples = []
    for i, meter_value in enumerate(message.get("meterValue", [])):
        at = _when(meter_value["timestamp"], f"meterValue[{i}].timestamp")
        for j, sampled in enumerate(meter_value["sampledValue"]):
            wh = _energy_wh(sampled, f"meterValue[{i}].sampledValue[{j}]")
            if wh is not None:
                samples.append((at, wh))
    token = message.get("idToken") or {}
    return TransactionEvent(
        event_type=message["eventType"],
        transaction_id=message["transactionInfo"]["transactionId"],
        seq_no=message["seqNo"],
        timestamp=_when(message["timestamp"], "timestamp"),
        id_token=token.get("idToken"),
        id_token_type=token.get("type"),
        meter_wh=samples,
    )


@dataclass(frozen=True)
class OcmfSession:
    """A verified OCMF transaction: its begin and end readings and the driver's id."""

    transaction_id: str
    id_token: str
    begin: tuple[dt.datetime, int]
    end: tuple[dt.datetime, int]


def ocmf_public_key_check(public_key: str) -> None:
    """Refuse a key pyocmf cannot read (registered with the station)."""
    from pyocmf import PublicKey, PyOCMFError

    try:
        PublicKey.from_string(public_key)
    except (PyOCMFError, ValueError) as exc:
        raise errors.InvalidStation(fields={"ocmf_public_key": [str(exc)[:200]]}) from None


def ocmf_verify(record: str, *, public_key: str) -> OcmfSession:
    """Parse an "OCMF|payload|signature" record and verify it; raise on anything unsigned."""
    from pyocmf import OCMF, PyOCMFError

    if not isinstance(record, str) or not record.startswith("OCMF|") or record.count("|") < 2:
        raise errors.OcmfUnsigned()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = OCMF.from_string(record)
    except PyOCMFError as exc:
        raise errors.OcmfUnsigned(f"The OCMF record could not be read: {str(exc)[:200]}") from None
    except RecursionError:  # its payload is JSON: nested deeper than the parser goes
        raise errors.OcmfUnsigned("The OCMF record could not be read: nested too deep.") from None
    if not parsed.signature or not parsed.signature.SD:
        raise errors.OcmfUnsigned()
    embedded = parsed.embedded_public_key
    if embedded and embedded.lower() != public_key.lower():
        raise errors.OcmfBadSignature("The record names a key other than the station's.")
    try:
        valid = parsed.verify_signature(public_key)
    except PyOCMFError:
        valid = False
    if not valid:
        raise errors.OcmfBadSignature()
    return _ocmf_session(parsed, record)


def _ocmf_session(parsed: Any, record: str) -> OcmfSession:
    readings = parsed.payload.RD or []
    begin = [r for r in readings if str(getattr(r.TX, "value", r.TX)) == "B"]
    end = [r for r in readings if str(getattr(r.TX, "value", r.TX)) in ("E", "L", "R", "A", "P")]
    if len(begin) != 1 or len(end) != 1:
        raise errors.OcmfInvalid("The record needs exactly one begin (B) and one end reading.")

    def wh(reading: Any) -> tuple[dt.datetime, int]:
        unit = str(getattr(reading.RU, "value", reading.RU))
        if unit not in UNIT_SCALE:
            raise errors.OcmfInvalid(f"Unsupported energy unit {unit}.")
        try:  # decimal.Overflow from an exponent far out of range; a time before year 1 in UTC
            value = Decimal(str(reading.RV)) * UNIT_SCALE[unit]
            at = reading.timestamp.astimezone(dt.UTC)
        except (ArithmeticError, OverflowError, ValueError):
            value = None
        if value is None or not 0 <= value < MAX_SAFE_INTEGER:
            raise errors.OcmfInvalid(
                "A reading must be a non-negative energy below 2**53 Wh at a time in range."
            )
        return at, int(value)  # fractions of a Wh are dropped

    first, last = wh(begin[0]), wh(end[0])
    if last[1] < first[1]:
        raise errors.MeterDecreasing(begin_wh=first[1], end_wh=last[1])
    if last[0] <= first[0]:
        raise errors.EventTimeBackwards(begin=first[0].isoformat(), end=last[0].isoformat())
    payload = parsed.payload
    if not payload.ID:
        raise errors.OcmfInvalid("The record carries no identification (ID).")
    import hashlib

    digest = hashlib.sha256(record.split("|")[1].encode()).hexdigest()[:32]
    return OcmfSession(
        transaction_id=f"ocmf-{digest}", id_token=str(payload.ID), begin=first, end=last
    )
