"""The order of the apps' URL lists under /api/v1/ changes no route: each documented path
resolves in exactly one of them, so registry/urls.py may put the hottest first."""

import uuid

import pytest
from django.urls import Resolver404, URLResolver, resolve
from drf_spectacular.generators import SchemaGenerator

from registry.urls import api_v1

PREFIX = "/api/v1/"
# Candidate values for a path parameter: an integer id, a public UUID, a code or a hash.
SAMPLES = ("1", str(uuid.UUID(int=1)), "abc", "a" * 64)


def _fill(path: str, value: str) -> str:
    out, rest = "", path
    while "{" in rest:
        head, _, tail = rest.partition("{")
        out += head + value
        rest = tail.partition("}")[2]
    return out + rest


def _lists_resolving(path: str) -> list[str]:
    """The api_v1 entries (an app's URL list, or the API root) that resolve `path`."""
    rest = path.removeprefix(PREFIX)
    found = []
    for entry in api_v1:
        if isinstance(entry, URLResolver):
            try:
                resolve("/" + rest, urlconf=entry.urlconf_name)
            except Resolver404:
                continue
            found.append(entry.urlconf_name.__name__)
        elif entry.pattern.match(rest):
            found.append(entry.name)
    return found


@pytest.fixture(scope="module")
def api_paths() -> list[str]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [path for path in schema["paths"] if path.startswith(PREFIX)]


def test_every_api_path_resolves_in_exactly_one_apps_url_list(api_paths):
    checked = 0
    for path in api_paths:
        candidates = [_fill(path, value) for value in SAMPLES] if "{" in path else [path]
        concrete = next(c for c in candidates if _lists_resolving(c))
        lists = _lists_resolving(concrete)

        assert len(lists) == 1, f"{concrete} resolves in {lists}: their order would matter"
        checked += 1

    assert checked > 100


def test_the_market_order_route_resolves_to_the_order_viewset():
    match = resolve("/api/v1/market/orders/")

    assert match.func.cls.__name__ == "OrderViewSet"
    assert match.func.actions["post"] == "create"
