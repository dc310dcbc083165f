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
        if k
        not in {"SECRET_KEY", "REGISTRY_SIGNING_KEY", "REGISTRY_WITNESS_KEY", "DJANGO_ENV", "DEBUG"}
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


def signing_key(name: str = "registry.example.org/test") -> str:
    from ledger.signing import generate_private_key

    private, _ = generate_private_key(name)
    return private


def witness_key() -> str:
    return signing_key("registry.example.org/test/witness")


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"DJANGO_ENV": "production"}, "SECRET_KEY, REGISTRY_SIGNING_KEY, REGISTRY_WITNESS_KEY"),
        ({}, "SECRET_KEY, REGISTRY_SIGNING_KEY, REGISTRY_WITNESS_KEY are not set"),
        (
            {"DJANGO_ENV": "production", "SECRET_KEY": "s3cret-" * 8, "REGISTRY_WITNESS_KEY": "k"},
            "REGISTRY_SIGNING_KEY is not",
        ),
        (
            {"DJANGO_ENV": "production", "REGISTRY_SIGNING_KEY": "k", "REGISTRY_WITNESS_KEY": "k"},
            "SECRET_KEY is not set",
        ),
        (
            {"DJANGO_ENV": "production", "SECRET_KEY": "s3cret-" * 8, "REGISTRY_SIGNING_KEY": "k"},
            "REGISTRY_WITNESS_KEY is not set",
        ),
        ({"DJANGO_ENV": "production", "SECRET_KEY": "  "}, "SECRET_KEY, REGISTRY_SIGNING_KEY"),
    ],
    ids=[
        "nothing",
        "DJANGO_ENV unset means production",
        "no key",
        "no secret",
        "no witness key",
        "blank",
    ],
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
        REGISTRY_WITNESS_KEY=witness_key(),
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


PROXY = "import django; django.setup(); from django.conf import settings; " + (
    "print(getattr(settings, 'SECURE_PROXY_SSL_HEADER', None))"
)


def production(**env: str) -> dict[str, str]:
    return {
        "DJANGO_ENV": "production",
        "SECRET_KEY": "s3cret-" * 8,
        "REGISTRY_SIGNING_KEY": signing_key(),
        "REGISTRY_WITNESS_KEY": witness_key(),
        "REGISTRY_ORIGIN": "registry.example.org/test",
        "ALLOWED_HOSTS": "registry.example.org",
    } | env


def proxy_header(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in {"TRUSTED_PROXY", "DJANGO_ENV"}}
    result = subprocess.run(
        [sys.executable, "-c", PROXY],
        cwd=REPO,
        env=clean | {"DJANGO_SETTINGS_MODULE": "registry.settings"} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("value", ["", "0", "false"], ids=["unset", "0", "false"])
def test_production_ignores_x_forwarded_proto_unless_a_trusted_proxy_is_declared(value):
    assert proxy_header(**production(TRUSTED_PROXY=value)) == "None"


def test_a_declared_trusted_proxy_sets_the_scheme_from_x_forwarded_proto():
    assert proxy_header(**production(TRUSTED_PROXY="1")) == "('HTTP_X_FORWARDED_PROTO', 'https')"


@pytest.mark.django_db
@pytest.mark.parametrize(("trusted", "secure"), [(False, False), (True, True)])
def test_a_forged_x_forwarded_proto_counts_only_behind_a_trusted_proxy(
    client, settings, trusted, secure
):
    # given: a client that reaches the web process directly and claims https
    if trusted:
        settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    else:
        settings.SECURE_PROXY_SSL_HEADER = None
    # when
    response = client.get("/api/v1/", headers={"X-Forwarded-Proto": "https"})
    # then
    assert response.wsgi_request.is_secure() is secure


def _shipped_web_commands() -> dict[str, str]:
    import json
    import re

    import yaml

    dockerfile = (REPO / "Dockerfile").read_text()
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    commands = {
        "Dockerfile": " ".join(
            json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE).group(1))
        ),
        "compose": " ".join(compose["services"]["web"]["command"]),
    }
    for name in ("README.md", "docs/operations.md"):
        text = (REPO / name).read_text().replace("\\\n", " ")
        for number, line in enumerate(
            re.findall(r"^\s*(?:web: )?(granian --interface wsgi .+)$", text, re.M)
        ):
            commands[f"{name}#{number}"] = line
    return commands


def test_every_shipped_web_command_is_the_documented_one_but_for_its_address():
    commands = _shipped_web_commands()
    assert len(commands) >= 6, commands  # image, Compose, README, operations.md x4

    def without_address(command: str) -> list[str]:
        words = command.split()
        for option in ("--host", "--port"):
            del words[words.index(option) : words.index(option) + 2]
        return words

    expected = without_address(commands["Dockerfile"])
    for where, command in commands.items():
        assert without_address(command) == expected, where


def test_the_web_process_listens_on_all_addresses_only_inside_a_container():
    import yaml

    for where, command in _shipped_web_commands().items():
        host = command.split("--host ")[1].split()[0]
        if where in {"Dockerfile", "compose"} or where.startswith("docs/operations.md#0"):
            # the container's own network namespace
            assert host == "0.0.0.0", where  # noqa: S104
        else:
            assert host == "127.0.0.1" or host.startswith(("10.", "192.168.")), where
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    for name in ("web", "web-b"):
        assert all(p.startswith("127.0.0.1:") for p in compose["services"][name]["ports"])
