"""Helpers every assets service module shares: permission checks, input errors, saves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from accounts.errors import NotIssuingBody
from accounts.models import User
from accounts.permissions import user_can_act_for, user_is_issuing_body
from assets import errors
from assets.models import (
    Device,
)
from registry.errors import InvalidInput

MAX_SAFE_INTEGER = 2**53


def _save_changes(instance: Any, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Set and save the fields whose value differs; return those (empty: nothing saved)."""
    changed = {name: value for name, value in changes.items() if getattr(instance, name) != value}
    if changed:
        for name, value in changed.items():
            setattr(instance, name, value)
        instance.save(update_fields=[*changed, "updated_at"])
    return changed


def _require_issuing_body(actor: User) -> None:
    if not user_is_issuing_body(actor):
        raise NotIssuingBody()


def _invalid(
    fields: dict[str, list[str]],
    detail: str | None = None,
    choices: dict[str, list] | None = None,
    error: type[InvalidInput] = InvalidInput,
) -> InvalidInput:
    """400 `invalid` (or `error`'s code) with `extra.fields`; `extra.choices` lists the
    valid values of bad choices."""
    first = next(iter(fields.items()))
    extra: dict[str, Any] = {"fields": dict(fields)}
    if choices:
        extra["choices"] = choices
    return error(detail or f"{first[0]}: {first[1][0]}", **extra)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require_operator(actor: User, device: Device, *, or_issuing_body: bool = False) -> None:
    if user_can_act_for(actor, device.organisation):
        return
    if or_issuing_body and user_is_issuing_body(actor):
        return
    raise errors.NotDeviceOperator(device_id=device.pk)
