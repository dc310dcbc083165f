import pytest
from django.core.cache import cache

from tests.registry.roles import app_role  # noqa: F401 - a fixture for the tests here


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    # Throttle counters live in the cache and user ids repeat across tests.
    cache.clear()
    yield
    cache.clear()
