"""docker-compose.yml and the Dockerfile run the documented processes, configured through
variables that registry/settings.py reads. (No Docker engine here: the files are read.)"""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from registry import healthcheck
from tests.conftest import REPO
from tests.registry.support import settings_env_vars

APP_SERVICES = ("web", "worker", "beat")
REQUIRED_ENV = {
    "DJANGO_ENV",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CACHE_URL",
    "SECRET_KEY",
    "REGISTRY_SIGNING_KEY",
    "REGISTRY_ORIGIN",
    "ALLOWED_HOSTS",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def documented() -> dict[str, list[str]]:
    """The `name: command` lines of docs/operations.md (Procfile style)."""
    text = (REPO / "docs" / "operations.md").read_text()
    commands = dict(re.findall(r"^(release|web|worker|beat): +(.+)$", text, re.MULTILINE))
    assert set(commands) == {"release", "web", "worker", "beat"}, commands
    return {name: shlex.split(command) for name, command in commands.items()}


def _command(service: dict) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else command


def test_the_services(compose):
    services = compose["services"]
    assert set(services) == {"db", "redis", *APP_SERVICES}
    assert services["db"]["image"].split(":")[1].split(".")[0] == "15"
    assert services["redis"]["image"].split(":")[1].split(".")[0] == "7"
    for name in APP_SERVICES:
        assert services[name]["build"] == "."
        assert services[name]["image"] == services["web"]["image"], "one image"


def test_web_migrates_then_serves_with_the_documented_commands(compose, documented):
    command = _command(compose["services"]["web"])
    assert command[:2] == ["sh", "-c"]
    release, serve = command[2].split(" && exec ")
    assert shlex.split(release) == documented["release"]
    assert shlex.split(serve) == documented["web"]
    assert documented["web"][:2] == ["gunicorn", "registry.wsgi:application"]


@pytest.mark.parametrize("name", ["worker", "beat"])
def test_celery_runs_the_documented_commands(compose, documented, name):
    assert _command(compose["services"][name]) == documented[name]
    assert documented[name][:4] == ["celery", "-A", "registry", name]


def test_the_image_serves_the_web_process_by_default(documented):
    dockerfile = (REPO / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE).group(1)
    assert json.loads(cmd) == documented["web"]
    python = re.search(r"^FROM python:(\d+\.\d+)", dockerfile, re.MULTILINE).group(1)
    assert python == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert "pip install -r requirements.txt" in dockerfile
    assert re.search(r"^USER (?!root)", dockerfile, re.MULTILINE), "do not run as root"


def test_every_variable_the_processes_get_is_read_by_the_settings(compose):
    read = settings_env_vars()
    for name in APP_SERVICES:
        environment = compose["services"][name]["environment"]
        assert set(environment) <= read, f"{name}: {sorted(set(environment) - read)}"
        assert set(environment) >= REQUIRED_ENV, (
            f"{name}: {sorted(REQUIRED_ENV - set(environment))}"
        )
        assert environment["DJANGO_ENV"] == "production"
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert "@db:5432/" in environment["DATABASE_URL"]
        assert environment["CELERY_BROKER_URL"].startswith("redis://redis:6379/")
        assert environment["CACHE_URL"].startswith("redis://redis:6379/")
        for secret in ("SECRET_KEY", "REGISTRY_SIGNING_KEY"):
            # Required from the operator's environment: `${NAME:?message}`, no default.
            assert environment[secret].startswith(f"${{{secret}:?"), secret


def test_startup_order_and_healthchecks(compose):
    services = compose["services"]
    healthy = {"condition": "service_healthy"}
    assert services["web"]["depends_on"] == {"db": healthy, "redis": healthy}
    for name in ("worker", "beat"):
        assert services[name]["depends_on"] == {"db": healthy, "redis": healthy, "web": healthy}
    assert services["web"]["healthcheck"]["test"] == ["CMD", "python", "-m", "registry.healthcheck"]
    assert healthcheck.DEFAULT_URL == "http://127.0.0.1:8000/healthz"
    assert (
        "--bind" in _command(services["web"])[2] and "0.0.0.0:8000" in _command(services["web"])[2]
    )
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_the_image_leaves_local_state_out():
    ignored = (REPO / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".dev", "db.sqlite3*"):
        assert entry in ignored


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    bin_dir = Path(sys.executable).parent
    executable = bin_dir / args[0] if (bin_dir / args[0]).exists() else args[0]
    return subprocess.run(
        [str(executable), *args[1:]],
        cwd=REPO,
        env=clean
        | {"DJANGO_ENV": "development", "DJANGO_SETTINGS_MODULE": "registry.settings"}
        | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_web_command_works_without_docker(documented):
    # gunicorn parses the options and imports the WSGI application, then exits.
    result = _run([documented["web"][0], "--check-config", *documented["web"][1:]])
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("name", ["worker", "beat"])
def test_the_celery_commands_work_without_docker(documented, name):
    # Celery loads the app and parses every option (an unknown one fails) before --help.
    result = _run([*documented[name], "--help"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Unable to load celery application" not in result.stdout + result.stderr


def test_the_release_command_works_without_docker(documented, tmp_path):
    assert documented["release"][:2] == ["python", "manage.py"]
    # --plan: list the migrations it would apply (to an empty database) without applying.
    result = _run(
        [sys.executable, *documented["release"][1:], "--plan"],
        SQLITE_PATH=str(tmp_path / "db.sqlite3"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Create model IdempotencyRecord" in result.stdout


@pytest.mark.parametrize(
    ("allowed_hosts", "host"),
    [
        ("registry.example.org,localhost", "registry.example.org"),
        (" .example.org ", "example.org"),
        ("*", "localhost"),
        ("", "localhost"),
    ],
)
def test_the_healthcheck_names_an_allowed_host(allowed_hosts, host):
    assert healthcheck.host_header(allowed_hosts) == host


@pytest.mark.django_db(transaction=True)
def test_the_healthcheck_against_a_running_server(live_server, settings):
    settings.ALLOWED_HOSTS = ["registry.example.org"]
    url = f"{live_server.url}/healthz"

    def probe(allowed_hosts: str) -> int:
        return subprocess.run(
            [sys.executable, "-m", "registry.healthcheck", url],
            cwd=REPO,
            env=os.environ | {"ALLOWED_HOSTS": allowed_hosts},
            capture_output=True,
            timeout=60,
        ).returncode

    assert probe("registry.example.org") == 0
    assert probe("somewhere.else") == 1, "Django refuses a host it does not serve"
