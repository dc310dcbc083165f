"""Helpers for the registry and accounts suites: queued ledger events, row counts, API routes."""

import ast
import json
import re
from pathlib import Path
from typing import Any

from django.contrib.admindocs.views import simplify_regex
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver

from ledger.models import PendingEvent

API_PREFIX = "/api/v1/"
SETTINGS_FILE = Path(__file__).resolve().parents[2] / "registry" / "settings.py"
_ENV_READERS = {"env_str", "env_bool", "env_int", "env_list", "getenv", "get"}
_PLACEHOLDER = re.compile(r"<(?:\w+:)?(\w+)>")
_IGNORED_METHODS = {"HEAD", "OPTIONS"}


def last_event_id() -> int:
    """The id of the newest queued ledger event (0 when there is none)."""
    return PendingEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def events_since(event_id: int) -> list[dict[str, Any]]:
    """The canonical events queued after `event_id`, decoded, oldest first."""
    rows = PendingEvent.objects.filter(pk__gt=event_id).order_by("pk")
    return [json.loads(bytes(row.event)) for row in rows]


def row_counts(*model_classes: type[models.Model]) -> dict[str, int]:
    """Rows per model, to show that a refused operation wrote nothing."""
    return {m._meta.label: m._default_manager.count() for m in (*model_classes, PendingEvent)}


def _view_class(callback: Any) -> type | None:
    return getattr(callback, "view_class", None) or getattr(callback, "cls", None)


def _methods(callback: Any) -> set[str]:
    actions = getattr(callback, "actions", None)
    if actions:  # a DRF ViewSet route: {"get": "list", "post": "create"}
        return {method.upper() for method in actions} - _IGNORED_METHODS
    view_class = _view_class(callback)
    if view_class is None:
        return {"GET"}  # a plain function view: not documented by the schema, so it shows up
    return {
        method.upper() for method in view_class.http_method_names if hasattr(view_class, method)
    } - _IGNORED_METHODS


def _app(callback: Any) -> str:
    """The Django app a view belongs to: the top package of its module."""
    owner = _view_class(callback) or callback
    return owner.__module__.split(".")[0]


def _api_routes(prefix: str) -> list[tuple[str, str, Any]]:
    routes: list[tuple[str, str, Any]] = []

    def walk(patterns: list, base: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, base + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                route = _PLACEHOLDER.sub(r"{\1}", simplify_regex(base + str(pattern.pattern)))
                if route.startswith(prefix) and "{format}" not in route:
                    routes.extend((route, m, pattern.callback) for m in _methods(pattern.callback))

    walk(get_resolver().url_patterns, "/")
    return routes


def api_endpoints(prefix: str = API_PREFIX) -> dict[tuple[str, str], str]:
    """{(route, method): app} for every URL pattern under `prefix`, read from the resolver.

    Routes use `{name}` placeholders as in the URL conf (`/api/v1/accounts/{pk}/`).
    Format-suffix variants (`.json`) are left out, as the schema leaves them out.
    """
    return {(route, method): _app(callback) for route, method, callback in _api_routes(prefix)}


def api_handlers(prefix: str = API_PREFIX) -> dict[tuple[str, str], Any]:
    """{(route, method): the view method that serves it} (None for plain function views)."""
    handlers = {}
    for route, method, callback in _api_routes(prefix):
        actions = getattr(callback, "actions", None) or {}
        name = actions.get(method.lower(), method.lower())
        handlers[(route, method)] = getattr(_view_class(callback), name, None)
    return handlers


def route_shape(route: str) -> str:
    """`/api/v1/accounts/{pk}/` and `/api/v1/accounts/{id}/` are the same route."""
    return re.sub(r"\{[^}]+\}", "{}", route)


def settings_env_vars() -> set[str]:
    """Every environment variable registry/settings.py reads (env_str("NAME"), os.environ…)."""
    names = set()
    for node in ast.walk(ast.parse(SETTINGS_FILE.read_text())):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            receiver = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
            if name in _ENV_READERS and (name != "get" or receiver == "os.environ"):
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    names.add(first.value)
        elif (
            isinstance(node, ast.Subscript)
            and ast.unparse(node.value) == "os.environ"
            and isinstance(node.slice, ast.Constant)
        ):
            names.add(node.slice.value)
    return names
