"""A login role with the application's grants, for tests that run as it (PostgreSQL)."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import pytest
from django.db import connection

from registry import db_roles


@pytest.fixture
def app_role():
    """A fresh login role holding the application's grants on the test database."""
    role = f"gp_app_{uuid.uuid4().hex[:10]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{role}" LOGIN')
    db_roles.app_role_grant(role)
    yield role
    with connection.cursor() as cursor:
        cursor.execute(f'DROP OWNED BY "{role}"')
        cursor.execute(f'DROP ROLE "{role}"')


def connect_as(role: str):
    settings = connection.settings_dict
    conn = psycopg2.connect(
        host=settings["HOST"], port=settings["PORT"] or 5432, dbname=settings["NAME"], user=role
    )
    conn.autocommit = True
    return conn


@contextmanager
def running_as(role: str) -> Iterator[None]:
    """Django's default connection logs in as `role` inside the block, as the owner after it."""
    settings = connection.settings_dict
    owner = settings["USER"]
    connection.close()
    settings["USER"] = role
    try:
        yield
    finally:
        connection.close()
        settings["USER"] = owner
