"""What the certificates replay reads from contract events: a storage balancing day's
unit changes (its charge cancelled into the battery, its discharge issued as storage
certificates), carried in `contract.executed`'s `result.units`
(`certificates.services.storing`)."""

from typing import Any

from contracts.events import EXECUTED


def storage_unit_changes(kind: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The "store" and "issue" changes of an execution (none for other kinds)."""
    return list((data.get("result") or {}).get("units") or [])


STORAGE_UNIT_EVENTS = ((EXECUTED,), storage_unit_changes)
