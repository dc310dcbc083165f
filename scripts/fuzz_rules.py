"""Rules of the API that its OpenAPI schema cannot state, for the schema fuzzer.

scripts/fuzz_api.py loads this file into schemathesis (SCHEMATHESIS_HOOKS) and runs
`positive_data_acceptance_beyond_schema` in place of schemathesis's own
`positive_data_acceptance` (ST202, "a schema-valid request rejected"). It is that check,
unchanged, except for one case: a 400 whose error `code` is listed below for that very
operation. Each listed code is a refusal that no JSON Schema can express, because it
depends on

- another parameter of the same request (an end after its start, a proof's index below
  its tree size): OpenAPI 3.0 has no cross-field comparison;
- the registry's data (an id in the body that names no device, user or partner registry;
  a tree size beyond the current ledger; a time on the device's reading interval; a
  device whose policy requires signed readings): a schema describes requests, not state;
- a checksum (the GS1 check digit of a metering-point id).

The code is specific to that rule, so any other refusal of the same operation (a generic
`invalid` from a serializer, a shape the schema should have described) still fails the
run. Keep the list short: before adding a code, check whether the schema can say it
(required, minItems, pattern, enum, minimum, minProperties) and say it there instead.
"""

from __future__ import annotations

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

DUPLICATE_ITEM = (
    "a bundle named by two items: uniqueness by one member of objects, which JSON Schema's "
    "uniqueItems (whole items) cannot say"
)
ORDER = "the period must end after it starts: a comparison of two fields"
REFERENCE = "names an object the registry does not have: data, not shape"
QUARTER_HOUR_IN_UTC = (
    "joined_at or left_at on a quarter hour of UTC (not 19:43Z, nor 10:00+05:20): "
    "arithmetic on the instant the offset moves, which no pattern states"
)
SESSION_SPAN = (
    "a session's meter values within 31 days of its start: a comparison across fields and events"
)
DEVICE_VALUES = (
    "a grid area the registry does not have, a commissioning date after today (data), or "
    "values that do not fit together: an energy source EECS does not allow with the "
    "technology, a storage device without its capacity or efficiency, either on another "
    "device (comparisons of fields)"
)

# error code -> why, for every operation: an Idempotency-Key the caller already used for
# another request (the fuzzer's stateful phase reuses keys across operations): state.
EVERYWHERE: dict[str, str] = {
    "idempotency_key_reused": "the key's earlier use with another request: state, not shape"
}

# operation label -> {error code -> why the schema cannot express it}
RULES: dict[str, dict[str, str]] = {
    "POST /api/v1/auth/register/": {
        "password_too_weak": "the password validators: too like the username, one of "
        "20,000 common passwords, or all digits: a list and a comparison, not a pattern",
    },
    "POST /api/v1/devices/onboard/": {
        "onboarding_file_invalid": "the header and rows of the CSV document inside the `csv` "
        "text: OpenAPI describes the JSON body, not a document inside one of its strings",
        "onboarding_rejected": "a row naming an organisation, account or grid area the "
        "registry does not have, or a duplicate: data, inside the CSV document",
    },
    "POST /api/v1/federation/peers/": {
        "peer_key_name_mismatch": "the log key's name must equal the `origin` field: a "
        "comparison of two fields",
        "peer_key_id_mismatch": "a verifier key's id is the first bytes of a hash of its "
        "name, type and key: a checksum",
        "peer_is_self": "an origin or witness name that is this registry's own: the "
        "registry's settings, not shape",
        "peer_witness_name_taken": "a witness name another registered peer has: data",
    },
    "POST /api/v1/auth/tokens/": {
        "invalid_credentials": "a username and password that match no account, or none "
        "when the caller is not logged in: data and the caller's session, not shape"
    },
    "GET /api/v1/ledger/proofs/inclusion/": {
        "invalid_proof_request": "seq must be below size: a comparison of two parameters",
        "tree_size_exceeded": "size at most the ledger's current size: data, not shape",
    },
    "GET /api/v1/ledger/proofs/consistency/": {
        "invalid_proof_request": "first at most second: a comparison of two parameters",
        "tree_size_exceeded": "second at most the ledger's current size: data, not shape",
    },
    "GET /api/v1/sites/{id}/hourly-matching/": {
        "period_invalid": "start before end, at most 366 days apart: two parameters"
    },
    "GET /api/v1/sites/{id}/hourly-matching/csv/": {
        "period_invalid": "start before end, at most 366 days apart: two parameters"
    },
    "GET /api/v1/communities/{id}/allocation/": {
        "period_invalid": "start before end, at most 366 days apart: two parameters"
    },
    "GET /api/v1/sites/{id}/data/": {
        "period_invalid": "start before end, at most 366 days apart: two parameters"
    },
    "POST /api/v1/bundles/{id}/retirements/": {"invalid_period": ORDER},
    "POST /api/v1/retirements/": {
        "invalid_period": ORDER,
        "duplicate_bundle": DUPLICATE_ITEM,
    },
    "POST /api/v1/withdrawals/": {
        "invalid_period": "a device needs a period that ends after it starts: two fields"
    },
    "POST /api/v1/withdrawals/by-device/": {"invalid_period": ORDER},
    "POST /api/v1/bundles/{id}/exports/": {
        "export_destination_unknown": "the destination " + REFERENCE
    },
    "POST /api/v1/charging/stations/": {
        "invalid_station": "the device, tariff or charger meter " + REFERENCE
    },
    "POST /api/v1/organisations/{id}/members/": {"user_unknown": "the user " + REFERENCE},
    "POST /api/v1/devices/": {
        "owner_invalid": "a co-owner's organisation or account " + REFERENCE,
        "shares_invalid": "the co-owners' shares must add up to 1: a sum over items",
        "device_inconsistent": DEVICE_VALUES,
    },
    "PATCH /api/v1/devices/{id}/": {"device_inconsistent": DEVICE_VALUES},
    "PUT /api/v1/devices/{id}/owners/": {
        "owner_invalid": "a co-owner's organisation or account " + REFERENCE,
        "shares_invalid": "the co-owners' shares must add up to 1: a sum over items",
    },
    "POST /api/v1/charging/stations/{id}/transaction-events/": {
        "transaction_event_energy_invalid": "an energy sample in whole Wh once its unit and "
        "multiplier apply: arithmetic across three fields",
        "bill_out_of_range": "the session's energy times its station's tariff fits 64 bits: "
        "arithmetic over the session and data",
        "session_too_long": SESSION_SPAN,
    },
    "POST /api/v1/charging/stations/{id}/ocmf/": {"session_too_long": SESSION_SPAN},
    "POST /api/v1/contracts/": {
        "terms_unmet": "terms of the kind's shape naming accounts, devices or a community "
        "the registry does not have or that do not fit; end_at after start_at: data and a "
        "comparison of two fields"
    },
    "POST /api/v1/contracts/{id}/amend/": {
        "invalid_terms": "which kind's terms apply depends on the contract the path names",
        "terms_unmet": "as for POST /api/v1/contracts/",
    },
    "POST /api/v1/communities/{id}/key/": {
        "allocation_key_unmet": "shares for exactly the current members, adding up to 1: "
        "data and a sum over items"
    },
    "POST /api/v1/communities/{id}/members/": {
        "community_membership_unmet": "a meter, site or account "
        + REFERENCE
        + " or that is not the member's",
        "community_membership_invalid": QUARTER_HOUR_IN_UTC,
    },
    "POST /api/v1/community-members/{id}/leave/": {
        "community_membership_unmet": "left_at after the membership's joined_at: data",
        "community_membership_invalid": QUARTER_HOUR_IN_UTC,
    },
    "POST /api/v1/communities/{id}/devices/": {
        "device_not_shareable": "a device in the community's grid area, active, not "
        "another community's: data"
    },
    "POST /api/v1/communities/{id}/distributions/": {
        "period_invalid": "whole hours in the community's time, start before end, not in "
        "the future, at most 31 days apart: two fields and the clock"
    },
    "POST /api/v1/consents/": {
        "consent_invalid": "meters of the named site and an approved grantee: data; "
        "valid_to after valid_from and after now: a comparison of two fields and the clock"
    },
    "POST /api/v1/sites/{id}/meters/": {
        "meter_not_linkable": "the meter " + REFERENCE + " or is not the household's"
    },
    "POST /api/v1/transfers/batch/": {"duplicate_bundle": DUPLICATE_ITEM},
    "POST /api/v1/grid-areas/": {"eic_check_invalid": "the EIC code's check character: a checksum"},
    "POST /api/v1/market/orders/": {
        "price_outside_band": "within the market's price band: data",
        "invalid_quantity": "at least the market's minimum quantity: data",
    },
    "POST /api/v1/market/orders/{id}/amend/": {
        "price_outside_band": "within the order's market's price band: data",
        "invalid_quantity": "at least the market's minimum and more than the order has "
        "filled: data",
    },
    "POST /api/v1/meters/": {
        "meter_key_required": "the device's policy requires a key: data, not shape"
    },
    "POST /api/v1/meters/{serial}/counter-resets/": {
        "meter_time_invalid": "on the device's reading interval, not in the future: data"
    },
    "POST /api/v1/meters/{serial}/remove/": {
        "meter_time_invalid": "not in the future, within the meter's key history: data"
    },
    "POST /api/v1/meters/{serial}/replacements/": {
        "meter_key_required": "the device's policy requires a key: data, not shape",
        "meter_time_invalid": "on the device's reading interval, after the old meter's "
        "installation, not in the future: data",
    },
    "POST /api/v1/readings/": {
        "readings_rejected": "rows refused for the registry's data only (DATA_ROW_CODES)"
    },
    # A key with a media type in brackets holds for request bodies of that type only.
    "POST /api/v1/readings/ [multipart/form-data]": {
        "readings_malformed": "the uploaded file's contents: OpenAPI 3.0 gives a file part "
        "no schema (the JSON and CSV bodies have theirs)"
    },
    "POST /api/v1/sites/": {
        "metering_point_invalid": "the GS1 check digit of the metering-point id: a checksum",
        "grid_area_unknown": "the grid area " + REFERENCE,
    },
}


# The row errors of a readings upload (extra.errors[].code) that come from the registry's
# data or from comparing fields, never from a row's shape: an unknown or foreign meter, a
# device that is not active, a time outside the meter's life, in the future or off the
# device's interval, an end not after its start, a key or signature the device's policy
# requires or that does not verify, a reading that repeats or overlaps another, too many
# meters in one batch. A shape error (required, unknown_field, negative, too_large,
# invalid_serial, signature_malformed, naive_time ...) still fails the run.
DATA_ROW_CODES = {
    "unknown_meter",
    "meter_not_of_device",
    "device_not_active",
    "before_meter_installed",
    "after_meter_removed",
    "in_future",
    "not_aligned",
    "end_not_after_start",
    "no_key",
    "signature_required",
    "signature_invalid",
    "duplicate_in_batch",
    "overlap_in_batch",
    "reading_conflict",
    "held_reading_conflict",
    "too_many_meters",
}


def _body(response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _explained(case, response) -> bool:
    """Whether a refusal is explained: a 400 of RULES' for this operation (and body type),
    a 422 of EVERYWHERE's, or a 413 for a body over the byte limit."""
    label = case.operation.label
    allowed = RULES.get(label, {}) | RULES.get(f"{label} [{case.media_type}]", {})
    body = _body(response)
    if response.status_code == 422 and body.get("code") in EVERYWHERE:
        return True
    if response.status_code == 413 and body.get("code") == "request_too_large":
        return True  # a body over the byte limit: maxLength counts characters, not bytes
    if response.status_code != 400 or body.get("code") not in allowed:
        return False
    if body["code"] == "readings_rejected":
        rows = (body.get("extra") or {}).get("errors") or []
        return bool(rows) and all(row.get("code") in DATA_ROW_CODES for row in rows)
    return True


def _body_outside_schema(case) -> bool:
    """Whether the request's JSON body is one the operation's schema refuses.

    The stateful phase fills a request from an earlier response (an inferred link can put a
    400's `extra` object into the next body) and still calls the case positive; a body the
    schema refuses is no schema-valid request, so refusing it is no ST202 finding."""
    if not isinstance(case.body, dict | list):
        return False
    body = case.operation.get_body_for_media_type(case.media_type)
    return body is not None and not body.is_valid(case.body)


@schemathesis.check
def positive_data_acceptance_beyond_schema(ctx, response, case):
    """schemathesis's positive_data_acceptance, with RULES' 400s accepted and bodies the
    schema refuses left to the other checks."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if _explained(case, response) or _body_outside_schema(case):
            return None
        raise
