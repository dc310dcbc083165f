"""Hooks: how a lower app learns about a higher one without importing it.

A hook is a named list that the app which calls it owns and defines; higher apps put their
callables (or, for data hooks, their objects) into it from `AppConfig.ready()`. The app
that owns the hook never imports the apps that fill it, so imports only run down the layers
(docs/architecture.md lists every hook: who registers, who calls).

    # accounts/services.py (owner, calls it)
    ACCOUNT_CLOSE_GUARDS = Hook("accounts.account_close_guards")
    # certificates/apps.py (registers)
    ACCOUNT_CLOSE_GUARDS.register(account_close_guard)

A hook is a list, so the owner iterates it and tests may replace it with a plain list.
"""

from collections.abc import Callable, Iterable
from typing import Any

HOOKS: dict[str, "Hook"] = {}
"""Every hook defined so far, by name (docs and tests read it)."""


class HookNotRegistered(LookupError):
    """A hook that needs exactly one registration has none (its app is not installed)."""


class Hook(list):
    """A named list of what higher apps registered in `AppConfig.ready()`."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        HOOKS[name] = self

    def register(self, item: Any) -> Any:
        """Add `item` once (ready() may run twice in tests); return it, so it decorates."""
        if item not in self:
            self.append(item)
        return item

    def one(self) -> Callable[..., Any]:
        """The single registration of a hook that takes exactly one."""
        if len(self) != 1:
            raise HookNotRegistered(f"hook {self.name}: {len(self)} registrations, expected 1")
        return self[0]

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"Hook({self.name!r}, {list.__repr__(self)})"


def pay_through(handlers: Iterable[Callable[[Any], object]], item: Any) -> tuple[str, str]:
    """Offer `item` (a contract's obligation, a charging bill) to the payment handlers in
    order, each in its own savepoint, until one returns a reference.

    Returns (reference, reason): the paying handler's reference and "", or "" and the error
    code of the handler that refused (its writes undone, the caller's kept); ("", "") when
    no handler paid or none is registered.
    """
    from django.db import transaction

    from registry.errors import DomainError

    for handler in handlers:
        try:
            with transaction.atomic():
                reference = handler(item)
        except DomainError as exc:
            return "", exc.code
        if reference:
            return str(reference), ""
    return "", ""


def pay_now(handlers: Iterable[Callable[[Any], object]], item: Any) -> str:
    """Offer `item` to the payment handlers in order and return the first reference ("" when
    none paid). Unlike `pay_through`, a handler's refusal (a DomainError such as
    insufficient funds) propagates, so the caller's transaction, which paid on a user's
    request, rolls back whole and the user sees the refusal."""
    for handler in handlers:
        reference = handler(item)
        if reference:
            return str(reference)
    return ""
