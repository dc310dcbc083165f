"""Helpers shared by the web views: role checks, service calls, dates."""

import datetime as dt
from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils import timezone

from registry.errors import DomainError
from web.roles import Roles, request_roles


def role_required(check: Callable[[Roles], bool]):
    """Log in first; then the person must hold the role (403 otherwise)."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs):
            if not check(request_roles(request)):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def call_service(request: HttpRequest, service: Callable, success: str, **kwargs) -> bool:
    """Call a service; report success or its refusal (code and detail) as a message."""
    try:
        service(actor=request.user, **kwargs)
    except DomainError as error:
        messages.error(request, f"{error.detail} ({error.code})")
        return False
    messages.success(request, success)
    return True


def form_refused(
    request: HttpRequest, form, error: DomainError, field_names: dict[str, str]
) -> None:
    """A service's refusal as a message (detail and code), and its field reasons on the
    form's fields; `field_names` maps the service's argument names to the form's."""
    messages.error(request, f"{error.detail} ({error.code})")
    for name, problems in (error.extra.get("fields") or {}).items():
        target = field_names.get(name, name)
        if target in form.fields and isinstance(problems, list):
            for problem in problems:
                form.add_error(target, str(problem))


def month_start(now: dt.datetime | None = None) -> dt.datetime:
    now = now or timezone.now()
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


ENERGY_UNITS = ((10**9, "GWh"), (10**6, "MWh"), (10**3, "kWh"), (1, "Wh"))


def energy_scale(values_wh: list[int]) -> tuple[int, str]:
    """The divisor and unit that show the largest value as a number of at least 1."""
    largest = max((abs(v) for v in values_wh), default=0)
    for size, unit in ENERGY_UNITS:
        if largest >= size:
            return size, unit
    return 1, "Wh"
