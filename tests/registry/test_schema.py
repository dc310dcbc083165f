"""The OpenAPI schema is valid and documents every endpoint under /api/v1/."""

import pytest
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator

from tests.registry.support import api_endpoints, api_handlers, route_shape

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def test_spectacular_validates_without_warnings(tmp_path):
    # Warnings are collected process-wide; start from none so only this run counts.
    GENERATOR_STATS.reset()
    out = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))

    assert out.read_text().startswith("openapi: 3")


def test_the_schema_documents_every_api_route_and_method(schema):
    documented = {
        (route_shape(path), method.upper())
        for path, operations in schema["paths"].items()
        for method in operations
        if method in HTTP_METHODS
    }
    routed = {(route_shape(route), method) for route, method in api_endpoints()}

    assert sorted(routed - documented) == [], "views missing from the OpenAPI schema"
    assert sorted(r for r in documented - routed if r[0].startswith("/api/v1/")) == []


def test_every_documented_error_uses_the_error_shape(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method not in HTTP_METHODS:
                continue
            for status, response in operation["responses"].items():
                if int(status) < 400 or "content" not in response:
                    continue
                ref = response["content"]["application/json"]["schema"].get("$ref", "")
                assert ref == "#/components/schemas/Error", f"{method} {path} {status}"


def test_idempotent_views_document_the_idempotency_key_header(schema):
    documented = {
        (route_shape(path), method.upper())
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method in HTTP_METHODS
        and any(
            p["in"] == "header" and p["name"] == "Idempotency-Key"
            for p in operation.get("parameters", [])
        )
    }
    assert {
        ("/api/v1/organisations/", "POST"),
        ("/api/v1/accounts/", "POST"),
    } <= documented
    for route, method in idempotent_handlers():
        assert (route_shape(route), method) in documented, f"{method} {route}"
        operation = schema["paths"][_schema_path(schema, route)][method.lower()]
        assert "422" in operation["responses"], f"{method} {route} must document 422"


def _schema_path(schema: dict, route: str) -> str:
    return next(p for p in schema["paths"] if route_shape(p) == route_shape(route))


def idempotent_handlers() -> list[tuple[str, str]]:
    """(route, method) of every view method wrapped in registry.idempotency.idempotent."""
    return [
        endpoint
        for endpoint, handler in api_handlers().items()
        if getattr(handler, "idempotent", False)
    ]


def test_idempotent_handlers_are_found():
    assert ("/api/v1/accounts/", "POST") in idempotent_handlers()
