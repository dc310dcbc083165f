import pytest

from tests.web.world import build_web_world


@pytest.fixture
def world(db):
    return build_web_world()


@pytest.fixture
def login(client):
    def as_role(world, role: str):
        client.force_login(world.users[role])
        return client

    return as_role
