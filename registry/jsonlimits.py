"""JSON with limits: every JSON body the registry parses goes through `json_loads_limited`.

The standard library's decoder recurses once per nesting level, so about a thousand `[`
raise RecursionError deep inside a request (a 500). Here the decoder's own recursion guard
is turned into `JsonTooDeep`, and the decoded value is then walked (iteratively) so that
anything nested deeper than `max_depth` is refused too: no registry document needs more
than a few levels.
"""

import json
from typing import Any

from registry.errors import JsonTooDeep, RequestTooLarge

DEFAULT_MAX_DEPTH = 32


def json_depth_check(value: Any, *, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
    """Raise JsonTooDeep when lists/dicts in `value` nest deeper than `max_depth`."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            raise JsonTooDeep(max_depth=max_depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def json_loads_limited(
    data: str | bytes,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_bytes: int | None = None,
    parse_constant=None,
) -> Any:
    """json.loads that refuses bodies over max_bytes (413) and nesting over max_depth (400)."""
    if max_bytes is not None and len(data) > max_bytes:
        raise RequestTooLarge(limit_bytes=max_bytes, size=len(data))
    try:
        value = json.loads(data, parse_constant=parse_constant)
    except RecursionError:
        raise JsonTooDeep(max_depth=max_depth) from None
    json_depth_check(value, max_depth=max_depth)
    return value


def json_raw_decode_limited(
    decoder: json.JSONDecoder, text: str, pos: int, *, max_depth: int = DEFAULT_MAX_DEPTH
) -> tuple[Any, int]:
    """decoder.raw_decode with the same depth limit (for streaming parsers)."""
    try:
        value, end = decoder.raw_decode(text, pos)
    except RecursionError:
        raise JsonTooDeep(max_depth=max_depth) from None
    json_depth_check(value, max_depth=max_depth)
    return value, end
