"""URL resolution that looks only at the routes a path's first segment can reach.

Django tries a URL list's patterns one after the other, and an `include` resolver builds
the list of everything it tried as it goes. Under /api/v1/ that was about 150 patterns:
0.15 ms to resolve `bundles/{id}/`, 0.36 ms for the last app's routes, on every request.

`IndexedResolver` reads each route's literal first segment once (`bundles` of
`bundles/<int:pk>/`, `market` of `^market/orders/$`) and resolves a path against the
routes that start with the path's first segment, plus those whose first segment is not a
literal (`""`, `<str:x>/`, a regex group), in their original order. A route that starts
with another literal can never match the path, so the result is the one the full list
gives. Includes without a namespace, an app name or extra arguments are looked into, so
their routes are indexed too. A path that no route matches raises Resolver404 as before;
its list of patterns tried names the candidates the index chose (only DEBUG pages show it).
"""

import re
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from django.urls import ResolverMatch, URLPattern, URLResolver
from django.urls.resolvers import RegexPattern, RoutePattern

_LITERAL = re.compile(r"[A-Za-z0-9_.-]+")
_REGEX_LITERAL = re.compile(r"[A-Za-z0-9_-]+")


def first_segment(entry: URLPattern | URLResolver) -> str | None:
    """The literal first path segment every path this entry matches starts with, or None
    when it has none (an empty route, a converter or a regex group comes first)."""
    pattern = entry.pattern
    if isinstance(pattern, RoutePattern):
        route = str(pattern._route)
        head, slash, _rest = route.partition("/")
        if not _LITERAL.fullmatch(head):
            return None
        if slash or (isinstance(entry, URLPattern) and pattern._is_endpoint):
            return head
        return None  # "abc" as an include's prefix also matches "abcdef/…"
    if isinstance(pattern, RegexPattern):
        regex = str(pattern._regex).removeprefix("^")
        head = _REGEX_LITERAL.match(regex)
        if head is None:
            return None
        after = regex[head.end() :]
        if after.startswith("/") or (after == "$" and isinstance(entry, URLPattern)):
            return head.group()
    return None


def _flatten(entries: Sequence[Any]) -> list[Any]:
    """The entries, with each plain include (empty prefix, no namespace, no app name, no
    extra arguments) replaced by its own entries."""
    flat: list[Any] = []
    for entry in entries:
        if (
            isinstance(entry, URLResolver)
            and isinstance(entry.pattern, RoutePattern)
            and str(entry.pattern._route) == ""
            and not (entry.namespace or entry.app_name or entry.default_kwargs)
        ):
            flat.extend(_flatten(entry.url_patterns))
        else:
            flat.append(entry)
    return flat


class IndexedResolver(URLResolver):
    """A URLResolver that tries only the routes a path's first segment can reach."""

    @cached_property
    def _by_segment(self) -> tuple[dict[str, URLResolver], URLResolver]:
        flat = [(first_segment(entry), entry) for entry in _flatten(self.url_patterns)]
        keys = {key for key, _entry in flat if key is not None}

        def resolver_of(key: str | None) -> URLResolver:
            entries = [entry for k, entry in flat if k is None or k == key]
            return URLResolver(
                self.pattern, entries, self.default_kwargs, self.app_name, self.namespace
            )

        return {key: resolver_of(key) for key in keys}, resolver_of(None)

    def resolve(self, path: Any) -> ResolverMatch:
        path = str(path)
        match = self.pattern.match(path)
        if match:
            by_segment, unindexed = self._by_segment
            return by_segment.get(match[0].split("/", 1)[0], unindexed).resolve(path)
        return super().resolve(path)  # not under this prefix: Django's own 404


def indexed_include(route: str, entries: Sequence[Any]) -> IndexedResolver:
    """`path(route, include(entries))`, resolved through the first-segment index."""
    return IndexedResolver(RoutePattern(route, is_endpoint=False), list(entries))
