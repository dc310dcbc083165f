"""How /api/v1/ paths resolve. The apps' URL lists never overlap: each documented path
resolves in exactly one of them, so their order changes no route. The first-segment index
(registry/url_index.py) resolves every path as the plain list of routes does."""

import uuid

import pytest
from django.urls import Resolver404, URLPattern, URLResolver, include, path, re_path, resolve
from django.urls.resolvers import RoutePattern
from drf_spectacular.generators import SchemaGenerator

from registry.url_index import IndexedResolver, first_segment
from registry.urls import api_v1, urlpatterns

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
    for api_path in api_paths:
        candidates = (
            [_fill(api_path, value) for value in SAMPLES] if "{" in api_path else [api_path]
        )
        concrete = next(c for c in candidates if _lists_resolving(c))
        lists = _lists_resolving(concrete)

        assert len(lists) == 1, f"{concrete} resolves in {lists}: their order would matter"
        checked += 1

    assert checked > 100


def test_the_market_order_route_resolves_to_the_order_viewset():
    match = resolve("/api/v1/market/orders/")

    assert match.func.cls.__name__ == "OrderViewSet"
    assert match.func.actions["post"] == "create"


def _view(request):  # pragma: no cover - never called, only resolved to
    raise AssertionError


@pytest.mark.parametrize(
    ("entry", "segment"),
    [
        (path("bundles/<int:pk>/", _view), "bundles"),
        (path("healthz", _view), "healthz"),
        (path(".well-known/gridproof/federation", _view), ".well-known"),
        (path("<str:kind>/", _view), None),
        (path("", _view), None),
        (path("market/", include([path("x/", _view)])), "market"),
        (path("market", include([path("/x/", _view)])), None),  # also "marketing/x/"
        (re_path(r"^market/orders/(?P<pk>\d+)/$", _view), "market"),
        (re_path(r"^auth/tokens/$", _view), "auth"),
        (re_path(r"^ledger$", _view), "ledger"),
        (re_path(r"^ledger\.json$", _view), None),
        (re_path(r"^bundles?/$", _view), None),
        (re_path(r"^(?P<kind>[a-z]+)/$", _view), None),
        (re_path(r"^$", _view), None),
    ],
)
def test_first_segment_is_a_literal_every_matching_path_starts_with(entry, segment):
    assert first_segment(entry) == segment


def _api_resolvers() -> tuple[IndexedResolver, URLResolver]:
    (indexed,) = [entry for entry in urlpatterns if isinstance(entry, IndexedResolver)]
    plain = URLResolver(RoutePattern("api/v1/", is_endpoint=False), list(api_v1))
    return indexed, plain


def _same(indexed: IndexedResolver, plain: URLResolver, path: str) -> bool:
    """Both resolve `path` to the same view, arguments, name and route, or neither does."""
    try:
        expected = plain.resolve(path)
    except Resolver404:
        with pytest.raises(Resolver404):
            indexed.resolve(path)
        return False
    got = indexed.resolve(path)
    assert (got.func, got.args, got.kwargs, got.url_name, got.route) == (
        expected.func,
        expected.args,
        expected.kwargs,
        expected.url_name,
        expected.route,
    ), path
    assert (got.app_names, got.namespaces) == (expected.app_names, expected.namespaces)
    return True


def test_the_index_resolves_every_documented_path_as_the_plain_list_does(api_paths):
    indexed, plain = _api_resolvers()
    resolved = 0
    for api_path in api_paths:
        rest = api_path.removeprefix("/")
        filled = [_fill(rest, value) for value in SAMPLES] if "{" in rest else [rest]
        for concrete in filled:
            resolved += _same(indexed, plain, concrete)
            resolved += _same(indexed, plain, concrete + ".json")
            resolved += _same(indexed, plain, concrete.rstrip("/"))

    assert resolved > len(api_paths)


@pytest.mark.parametrize(
    "missing",
    ["api/v1/nope/", "api/v1/bundles/1/nope/", "api/v1/ledger/nope", "api/v1/market", "api/v1//"],
)
def test_paths_no_route_matches_are_404s_through_the_index_too(missing):
    indexed, plain = _api_resolvers()
    assert not _same(indexed, plain, missing)


def test_a_bundle_read_tries_a_few_routes_not_the_whole_api():
    indexed, _plain = _api_resolvers()
    by_segment, unindexed = indexed._by_segment
    everything = sum(1 for _ in _leaves(indexed.url_patterns))

    assert len(by_segment["bundles"].url_patterns) < everything / 5
    assert len(unindexed.url_patterns) <= 1  # only the API root's "" route


def _leaves(entries):
    for entry in entries:
        if isinstance(entry, URLPattern):
            yield entry
        else:
            yield from _leaves(entry.url_patterns)
