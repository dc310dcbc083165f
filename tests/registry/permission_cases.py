"""Permission matrix rows for the API root (see tests/registry/matrix.py)."""

from tests.registry.matrix import Case, expect

CASES = [
    Case("GET", "/api/v1/", expect(200), name="the API root"),
]
