"""Walking the generated OpenAPI schema from what an operation takes."""

from collections.abc import Callable, Iterator
from typing import Any


def nodes_taken(schema: dict, pick: Callable[[dict], bool]) -> Iterator[tuple[str, dict]]:
    """(path, node) for every schema node `pick` accepts under an operation's parameters
    and request bodies, following references (each component once per operation)."""
    components = schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            inputs = [p.get("schema", {}) for p in operation.get("parameters", [])]
            for media in operation.get("requestBody", {}).get("content", {}).values():
                inputs.append(media["schema"])
            for node in _walk(inputs, components, set()):
                if pick(node):
                    yield path, node


def _walk(node: Any, components: dict, seen: set[str]) -> Iterator[dict]:
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, components, seen)
    elif isinstance(node, dict):
        ref = node.get("$ref")
        if ref and ref not in seen:
            seen.add(ref)
            yield from _walk(components[ref.rsplit("/", 1)[1]], components, seen)
        yield node
        for value in node.values():
            yield from _walk(value, components, seen)
