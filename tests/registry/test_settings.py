"""Production settings refuse to start without their secrets."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

SETUP = "import django; django.setup(); print('started')"


def start(**env: str) -> subprocess.CompletedProcess:
    """`django.setup()` in a fresh process with exactly these GridProof variables."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "REGISTRY_SIGNING_KEY", "DJANGO_ENV", "DEBUG"}
    }
    return subprocess.run(
        [sys.executable, "-c", SETUP],
        cwd=REPO,
        env=clean
        | {
            "DJANGO_SETTINGS_MODULE": "registry.settings",
            "REGISTRY_SIGNING_KEY_FILE": "/nonexistent/signing.key",
        }
        | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def signing_key() -> str:
    from ledger.signing import generate_private_key

    private, _ = generate_private_key("registry.example.org/test")
    return private


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"DJANGO_ENV": "production"}, "SECRET_KEY and REGISTRY_SIGNING_KEY are not set"),
        ({}, "SECRET_KEY and REGISTRY_SIGNING_KEY are not set"),
        ({"DJANGO_ENV": "production", "SECRET_KEY": "s3cret-" * 8}, "REGISTRY_SIGNING_KEY is not"),
        ({"DJANGO_ENV": "production", "REGISTRY_SIGNING_KEY": "key"}, "SECRET_KEY is not set"),
        ({"DJANGO_ENV": "production", "SECRET_KEY": "  "}, "SECRET_KEY and REGISTRY_SIGNING_KEY"),
    ],
    ids=["nothing", "DJANGO_ENV unset means production", "no key", "no secret", "blank"],
)
def test_production_refuses_to_start_without_its_secrets(env, missing):
    result = start(**env)

    assert result.returncode != 0
    assert "started" not in result.stdout
    assert "django.core.exceptions.ImproperlyConfigured" in result.stderr
    assert missing in result.stderr
    assert "production mode" in result.stderr
    assert "DJANGO_ENV=development" in result.stderr  # says how to run locally instead


def test_production_starts_with_its_secrets():
    result = start(
        DJANGO_ENV="production",
        SECRET_KEY="s3cret-" * 8,
        REGISTRY_SIGNING_KEY=signing_key(),
        REGISTRY_ORIGIN="registry.example.org/test",
        ALLOWED_HOSTS="registry.example.org",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started"


def test_development_starts_without_secrets():
    result = start(DJANGO_ENV="development")
    assert result.returncode == 0, result.stderr


def test_a_variable_set_to_nothing_means_its_default():
    # `DATABASE_URL=` in an env file, or `${DATABASE_URL:-}` in docker-compose.yml.
    result = start(DJANGO_ENV="development", DATABASE_URL="", REGISTRY_ORIGIN=" ")
    assert result.returncode == 0, result.stderr
