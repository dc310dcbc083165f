"""docker-compose.yml and the Dockerfile run the documented processes, configured through
variables that registry/settings.py reads: two registries, A and B, each with its own
database, Redis databases, identity and port, peered by two one-shot services that run
`manage.py peer_add`. (No Docker engine here: the files are read.)"""

import io
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import CommandError
from django.test import override_settings

from federation.api.views import identity_body
from federation.errors import PeerAlreadyRegistered
from federation.management.commands import peer_add
from federation.models import Peer
from ledger.signing import generate_private_key
from registry import healthcheck
from tests.conftest import REPO
from tests.registry.support import settings_env_vars


@dataclass(frozen=True)
class Registry:
    db: str
    migrate: str  # the one-shot release step, as the database's owner
    web: str
    worker: str
    beat: str
    peering: str  # the one-shot service that registers the other registry here
    port: str  # the host port of its web service
    suffix: str  # of the operator's variables: SECRET_KEY, SECRET_KEY_B, ...

    @property
    def processes(self) -> tuple[str, str, str]:
        return (self.web, self.worker, self.beat)


A = Registry("db", "migrate", "web", "worker", "beat", "peering", "8000", "")
B = Registry("db-b", "migrate-b", "web-b", "worker-b", "beat-b", "peering-b", "8001", "_B")
REGISTRIES = (A, B)
OTHER = {A: B, B: A}
APP_SERVICES = (  # all run the image
    *(r.migrate for r in (A, B)),
    *A.processes,
    *B.processes,
    A.peering,
    B.peering,
)
REQUIRED_ENV = {
    "DJANGO_ENV",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CACHE_URL",
    "SECRET_KEY",
    "REGISTRY_SIGNING_KEY",
    "REGISTRY_WITNESS_KEY",
    "REGISTRY_ORIGIN",
    "REGISTRY_BASE_URL",
    "ALLOWED_HOSTS",
}
# What each registry has of its own; everything else they share.
PER_REGISTRY = (REQUIRED_ENV - {"DJANGO_ENV", "ALLOWED_HOSTS"}) | {"REGISTRY_NAME"}
PEER_ROLES = {"witness", "mirror", "partner"}
registries = pytest.mark.parametrize("registry", REGISTRIES, ids=["a", "b"])

_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?::?([-?])([^}]*))?\}")


def interpolate(value: str, operator: dict[str, str] | None = None) -> str:
    """Compose's substitution: `${NAME:-default}`, `${NAME:?error}`, `$$`. The operator's
    variables come from `operator`; an unset required one reads `<NAME>`."""

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, kind, argument = match.groups()
        if (operator or {}).get(name):
            return operator[name]
        if kind == "?":
            return f"<{name}>"  # compose refuses to start
        return argument or ""

    return _VARIABLE.sub(substitute, value)


def required_variable(value: str) -> str | None:
    """NAME when `value` is `${NAME:?message}`: required from the operator, no default."""
    match = re.fullmatch(r"\$\{(\w+):\?[^}]*\}", value)
    return match.group(1) if match else None


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


def _environment(compose: dict, service: str, operator: dict | None = None) -> dict[str, str]:
    environment = compose["services"][service]["environment"]
    return {name: interpolate(str(value), operator) for name, value in environment.items()}


def test_the_services(compose):
    services = compose["services"]
    assert set(services) == {"db", "db-b", "redis", "mosquitto", "gateway", *APP_SERVICES}
    assert services["db"]["image"].split(":")[1].split(".")[0] == "15"
    assert services["db-b"]["image"] == services["db"]["image"]
    assert services["redis"]["image"].split(":")[1].split(".")[0] == "7"
    for name in APP_SERVICES:
        assert services[name]["build"] == "."
        assert services[name]["image"] == services["web"]["image"], "one image"


def test_the_meter_gateway_runs_the_image_against_the_compose_broker(compose):
    services = compose["services"]
    gateway = services["gateway"]
    assert gateway["image"] == services["web"]["image"] and gateway["build"] == "."
    assert _command(gateway) == ["python", "manage.py", "mqtt_gateway"]
    environment = _environment(compose, "gateway")
    assert environment.pop("MQTT_BROKER_URL") == "mqtt://mosquitto:1883"
    assert environment == _environment(compose, "web")
    assert set(_environment(compose, "gateway")) <= settings_env_vars()


@registries
def test_the_owner_migrates_then_the_application_role_serves(compose, documented, registry):
    services = compose["services"]
    assert _command(services[registry.migrate]) == documented["release"]
    assert _command(services[registry.web]) == documented["web"]
    assert documented["web"][0] == "granian"
    assert documented["web"][-1] == "registry.wsgi:application"
    assert services[registry.migrate]["restart"] == "no"
    assert services[registry.web]["depends_on"][registry.migrate] == {
        "condition": "service_completed_successfully"
    }


def _database_user(url: str) -> str:
    return url.split("://", 1)[1].split(":", 1)[0]


@registries
def test_the_processes_do_not_log_in_as_the_owner(compose, registry):
    """The release step logs in as the owner and grants DATABASE_APP_ROLE; everything else
    logs in as that role, which the database's init script creates
    (docs/operations.md, "Database roles")."""
    services = compose["services"]
    migrate = dict(services[registry.migrate]["environment"])
    web = services[registry.web]["environment"]
    owner = services[registry.db]["environment"]["POSTGRES_USER"]
    app = services[registry.db]["environment"]["POSTGRES_APP_USER"]
    assert owner != app
    assert _database_user(migrate.pop("DATABASE_URL")) == owner
    assert migrate.pop("DATABASE_APP_ROLE") == app == _database_user(web["DATABASE_URL"])
    assert migrate == {k: v for k, v in web.items() if k != "DATABASE_URL"}
    assert set(services[registry.migrate]["environment"]) <= settings_env_vars()
    init = [v for v in services[registry.db]["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert init == ["./deploy/postgres/app-role.sh:/docker-entrypoint-initdb.d/app-role.sh:ro"]
    assert (REPO / "deploy" / "postgres" / "app-role.sh").exists()


@registries
@pytest.mark.parametrize("name", ["worker", "beat"])
def test_celery_runs_the_documented_commands(compose, documented, registry, name):
    assert _command(compose["services"][getattr(registry, name)]) == documented[name]
    assert documented[name][:4] == ["celery", "-A", "registry", name]


def test_the_web_process_runs_the_measured_worker_model(documented):
    # Granian's WSGI interface, 3 processes of 4 threads, chosen against gunicorn's sync
    # and gthread workers by measurement (docs/operations.md, "Worker model"); the image,
    # Compose and the README's commands run the documented web command (the tests around
    # this one), so this pins them all.
    web = documented["web"]
    assert web[web.index("--interface") + 1] == "wsgi"
    assert web[web.index("--workers") + 1] == "3"
    assert web[web.index("--blocking-threads") + 1] == "4"
    assert "--respawn-failed-workers" in web  # a killed worker comes back (test below)
    readme = (REPO / "README.md").read_text()
    shown = re.findall(r"granian --interface wsgi .+?(?=`|$)", readme, re.MULTILINE)
    assert len(shown) >= 2, "the README shows the web command, in a container and on a host"
    for command in shown:
        assert "--workers 3 --blocking-threads 4" in command, command
        assert command.endswith(" registry.wsgi:application"), command


def test_the_image_serves_the_web_process_by_default(documented):
    dockerfile = (REPO / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE).group(1)
    assert json.loads(cmd) == documented["web"]
    python = re.search(r"^FROM python:(\d+\.\d+)", dockerfile, re.MULTILINE).group(1)
    assert python == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert "pip install -r requirements.txt" in dockerfile
    assert re.search(r"^USER (?!root)", dockerfile, re.MULTILINE), "do not run as root"


@registries
def test_every_variable_the_processes_get_is_read_by_the_settings(compose, registry):
    read = settings_env_vars()
    for name in (*registry.processes, registry.peering):
        environment = compose["services"][name]["environment"]
        assert set(environment) <= read, f"{name}: {sorted(set(environment) - read)}"
        assert set(environment) >= REQUIRED_ENV, (
            f"{name}: {sorted(REQUIRED_ENV - set(environment))}"
        )
        assert environment == compose["services"][registry.web]["environment"], name
        assert environment["DJANGO_ENV"] == "production"
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert f"@{registry.db}:5432/" in environment["DATABASE_URL"]
        assert environment["CELERY_BROKER_URL"].startswith("redis://redis:6379/")
        assert environment["CACHE_URL"].startswith("redis://redis:6379/")
        secrets = ("SECRET_KEY", "REGISTRY_SIGNING_KEY", "REGISTRY_WITNESS_KEY", "REGISTRY_ORIGIN")
        for secret in secrets:
            # Required from the operator's environment: `${NAME:?message}`, no default.
            assert required_variable(environment[secret]) == secret + registry.suffix, secret


@registries
def test_the_worker_writes_the_tiles_the_web_process_serves(compose, registry):
    services = compose["services"]
    tiles = _environment(compose, registry.web)["LEDGER_TILES_DIR"]
    assert _environment(compose, registry.worker)["LEDGER_TILES_DIR"] == tiles

    def mounted(service: str) -> list[str]:
        return [v for v in services[service].get("volumes", []) if v.split(":")[1] == tiles]

    (written,) = mounted(registry.worker)
    (served,) = mounted(registry.web)
    volume = written.split(":")[0]
    assert served == f"{volume}:{tiles}:ro", "the web process only reads them"
    assert volume in compose["volumes"], "a named volume: kept across restarts"
    other = mounted(OTHER[registry].worker)[0].split(":")[0]
    assert other != volume, "each registry its own log"
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"mkdir -p {tiles} && chown gridproof {tiles}" in dockerfile


def test_the_two_registries_share_nothing_of_their_own(compose):
    a, b = (_environment(compose, registry.web) for registry in REGISTRIES)
    assert set(a) == set(b)
    for name in set(a) - PER_REGISTRY - {"ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS"}:
        assert a[name] == b[name], f"{name}: the same for both registries"
    for name in PER_REGISTRY:
        assert a[name] != b[name], f"{name}: each registry has its own"
    # Their own Redis databases (broker, cache, and the kick flag on the broker's).
    redis_urls = [env[name] for env in (a, b) for name in ("CELERY_BROKER_URL", "CACHE_URL")]
    assert len(set(redis_urls)) == 4, redis_urls
    # Their own database server and data volume.
    services = compose["services"]
    assert services["db-b"]["healthcheck"] == services["db"]["healthcheck"]
    volumes = [services[r.db]["volumes"][0].split(":")[0] for r in REGISTRIES]
    assert services["db-b"]["volumes"][1:] == services["db"]["volumes"][1:]  # the init script
    assert len(set(volumes)) == 2 and set(volumes) <= set(compose["volumes"])
    # Their own web port on the host's loopback (the proxy's side), 8000 inside
    # (granian --host 0.0.0.0 --port 8000 in the container's own network).
    assert [services[r.web]["ports"] for r in REGISTRIES] == [
        [f"127.0.0.1:{r.port}:8000"] for r in REGISTRIES
    ]


@registries
@pytest.mark.parametrize(
    "operator",
    [{}, {"ALLOWED_HOSTS": "a.example.org", "ALLOWED_HOSTS_B": "b.example.org"}],
    ids=["defaults", "operator-hosts"],
)
def test_the_registries_reach_each_other_by_service_name(compose, registry, operator):
    environment = _environment(compose, registry.web, operator)
    # Peers use REGISTRY_BASE_URL (the identity document names it), by default the
    # container's name in the Compose network; the Host header names it, so it is allowed.
    assert environment["REGISTRY_BASE_URL"] == f"http://{registry.web}:8000"
    hosts = environment["ALLOWED_HOSTS"].split(",")
    assert registry.web in hosts and "" not in hosts
    if operator:
        assert operator["ALLOWED_HOSTS" + registry.suffix] in hosts
    # Peer calls do not follow redirects: plain http inside the network needs no redirect.
    assert environment["SECURE_SSL_REDIRECT"].lower() not in {"1", "true", "yes", "on"}


def test_startup_order_and_healthchecks(compose):
    services = compose["services"]
    healthy = {"condition": "service_healthy"}
    for registry in REGISTRIES:
        web = services[registry.web]
        assert web["depends_on"] == {
            registry.db: healthy,
            "redis": healthy,
            registry.migrate: {"condition": "service_completed_successfully"},
        }
        assert services[registry.migrate]["depends_on"] == {registry.db: healthy, "redis": healthy}
        for name in (registry.worker, registry.beat):
            assert services[name]["depends_on"] == {
                registry.db: healthy,
                "redis": healthy,
                registry.web: healthy,
            }
        assert services[registry.worker]["healthcheck"] == services["worker"]["healthcheck"]
        assert web["healthcheck"]["test"] == ["CMD", "python", "-m", "registry.healthcheck"]
        command = _command(web)
        assert command[command.index("--host") + 1] == "0.0.0.0"  # noqa: S104 (its own network)
        assert command[command.index("--port") + 1] == "8000"
        assert "pg_isready" in " ".join(services[registry.db]["healthcheck"]["test"])
        # Peering needs both registries serving; it runs once (the script retries).
        assert services[registry.peering]["depends_on"] == {"web": healthy, "web-b": healthy}
        assert services[registry.peering]["restart"] == "no"
        assert "healthcheck" not in services[registry.peering]
    assert healthcheck.DEFAULT_URL == "http://127.0.0.1:8000/healthz"
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_the_image_leaves_local_state_out():
    ignored = (REPO / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".dev", "db.sqlite3*"):
        assert entry in ignored


# --- Peering: `sh -c SCRIPT NAME python manage.py peer_add ...` --------------------------


def _peering(compose: dict, registry: Registry, operator: dict | None = None):
    """(the retry script, the management command's name, its arguments)."""
    command = compose["services"][registry.peering]["command"]
    assert command[:2] == ["sh", "-c"] and command[3] == registry.peering
    argv = [interpolate(arg, operator) for arg in command[4:]]
    assert argv[:2] == ["python", "manage.py"], argv
    return interpolate(command[2], operator), argv[2], argv[3:]


@registries
@pytest.mark.parametrize(
    "operator",
    [
        {},
        {"REGISTRY_BASE_URL": "https://a.example.org", "REGISTRY_BASE_URL_B": "https://b.example"},
    ],
    ids=["defaults", "public-urls"],
)
def test_the_peering_services_run_peer_add_with_valid_options(compose, registry, operator):
    script, name, args = _peering(compose, registry, operator)
    assert script == _peering(compose, OTHER[registry], operator)[0], "one script"
    assert get_commands().get(name) == "federation", name
    parser = load_command_class("federation", name).create_parser("manage.py", name)
    options = parser.parse_args(args)  # an unknown option or a missing one fails here
    spelled = {option for action in parser._actions for option in action.option_strings}
    given = {arg.split("=")[0] for arg in args if arg.startswith("-")}
    assert given <= spelled, f"not abbreviated: {sorted(given - spelled)}"
    # It registers the other registry, found at the URL that registry gives its peers,
    # into its own registry's database (the peering service has its registry's environment).
    other = _environment(compose, OTHER[registry].web, operator)
    assert options.discover == other["REGISTRY_BASE_URL"]
    assert set(options.roles.split(",")) == PEER_ROLES <= set(Peer.Role.values)
    assert options.actor == "admin"
    # Each registry's issuing-body member, `admin` unless the operator names another.
    command = compose["services"][registry.peering]["command"]
    assert command[command.index("--actor") + 1] == f"${{PEERING_ACTOR{registry.suffix}:-admin}}"


IDENTITY_SETTINGS = (
    "REGISTRY_ORIGIN",
    "REGISTRY_SIGNING_KEY",
    "REGISTRY_WITNESS_KEY",
    "REGISTRY_BASE_URL",
)


@pytest.mark.django_db
@registries
def test_peering_registers_the_other_registry_in_process(compose, registry, settings, monkeypatch):
    """What a peering container does, minus HTTP: the other registry's identity document is
    computed with its Compose environment and handed to peer_add's discovery."""
    keys = {}
    for r in REGISTRIES:
        keys["REGISTRY_ORIGIN" + r.suffix] = f"{r.web}.example.org/gridproof"
        keys["REGISTRY_SIGNING_KEY" + r.suffix] = generate_private_key(
            f"{r.web}.example.org/gridproof"
        )[0]
        keys["REGISTRY_WITNESS_KEY" + r.suffix] = generate_private_key(
            f"{r.web}.example.org/gridproof/witness"
        )[0]
    own = _environment(compose, registry.web, keys)
    other = _environment(compose, OTHER[registry].web, keys)
    with override_settings(**{name: other[name] for name in IDENTITY_SETTINGS}):
        identity = identity_body()
    for name in IDENTITY_SETTINGS:
        setattr(settings, name, own[name])
    discovered = []
    monkeypatch.setattr(
        peer_add.Command, "_discover", lambda self, url: discovered.append(url) or identity
    )
    _script, name, args = _peering(compose, registry)

    # Before the operator has made the actor an issuing-body member, peer_add fails (and
    # the script retries): no user, then not an issuing-body member.
    with pytest.raises(CommandError, match="no user 'admin'"):
        call_command(name, *args)
    call_command(
        "createsuperuser",
        interactive=False,
        username="admin",
        email="admin@example.org",
        stdout=io.StringIO(),
    )
    with pytest.raises(CommandError, match="not_issuing_body"):
        call_command(name, *args)
    call_command(
        "bootstrap_issuing_body",
        "--admin=admin",
        "--legal-name=Issuing Body",
        "--country=DE",
        "--registration-id=IB-1",
        stdout=io.StringIO(),
    )

    call_command(name, *args, stdout=io.StringIO())
    peer = Peer.objects.get()
    assert (peer.origin, peer.base_url) == (
        other["REGISTRY_ORIGIN"],
        f"http://{OTHER[registry].web}:8000",
    )
    assert set(peer.roles) == PEER_ROLES
    assert discovered[-1] == other["REGISTRY_BASE_URL"]

    # A restarted stack runs it again: the script takes this error as done.
    with pytest.raises(CommandError, match=PeerAlreadyRegistered.code):
        call_command(name, *args)
    assert Peer.objects.count() == 1


def test_the_peering_script_without_docker(compose, tmp_path):
    script = _peering(compose, A)[0]
    assert f"*{PeerAlreadyRegistered.code}*" in script
    # `sleep` records its argument instead of waiting.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sleep").write_text(f'#!/bin/sh\necho "$@" >> "{tmp_path}/slept"\n')
    (bin_dir / "sleep").chmod(0o755)
    env = os.environ | {"PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def peering(fake: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["sh", "-c", script, "peering", "sh", "-c", fake, "fake", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )

    # Fails until the second try (the other registry was not up yet), then registers.
    marker = tmp_path / "tried"
    result = peering(
        'if [ -e "$1" ]; then echo "registered peer #1"; '
        'else : > "$1"; echo "CommandError: no user \'admin\'" >&2; exit 1; fi',
        str(marker),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "registered peer #1\n"
    assert "no user 'admin'" in result.stderr and "retrying" in result.stderr
    assert (tmp_path / "slept").read_text().split() == ["15"]

    # Registered already (a restart): done, no retry.
    result = peering(
        f'echo "CommandError: {PeerAlreadyRegistered.code}: already registered." >&2; exit 1'
    )
    assert result.returncode == 0, result.stderr
    assert PeerAlreadyRegistered.code in result.stdout
    assert (tmp_path / "slept").read_text().split() == ["15"]


def _command_env(args: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The command with its executable from this virtualenv, in a development environment
    without the test run's database and broker."""
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    bin_dir = Path(sys.executable).parent
    executable = bin_dir / args[0] if (bin_dir / args[0]).exists() else args[0]
    return [str(executable), *args[1:]], clean | {
        "DJANGO_ENV": "development",
        "DJANGO_SETTINGS_MODULE": "registry.settings",
    } | env


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    command, env = _command_env(args, env)
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def _start(args: list[str], log: Path, **env: str) -> subprocess.Popen:
    """Start the command in the background, its output going to `log`."""
    command, env = _command_env(args, env)
    with log.open("wb") as output:  # the child keeps its own copy
        return subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: nothing of it outlives the test
        )


def _children(pid: int) -> set[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(child) for child in children.read_text().split()} if children.exists() else set()


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _healthz(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return r.status
    except OSError:
        return None


def _wait(condition, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    return None


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_the_web_command_serves_and_respawns_a_killed_worker_without_docker(documented, tmp_path):
    # given the documented web command, on a free loopback port instead of 0.0.0.0:8000
    web = list(documented["web"])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    web[web.index("--host") + 1] = "127.0.0.1"
    web[web.index("--port") + 1] = str(port)
    log = tmp_path / "web.log"
    server = _start([*web, "--respawn-interval", "0.5"], log)
    try:
        # when it has started: it answers, with the documented number of worker processes
        assert _wait(lambda: _healthz(port)) == 200, log.read_text(errors="replace")[-2000:]
        workers = _wait(lambda: len(_children(server.pid)) == 3 and _children(server.pid))
        assert workers, log.read_text(errors="replace")[-2000:]
        started = lambda n: log.read_text(errors="replace").count("Started worker") == n  # noqa: E731
        assert _wait(lambda: started(3)), log.read_text(errors="replace")[-2000:]  # all loaded

        # and one worker is killed
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)

        # then a new one takes its place and the server goes on answering
        assert _wait(lambda: victim not in (c := _children(server.pid)) and len(c) == 3)
        assert _wait(lambda: started(4)), log.read_text(errors="replace")[-2000:]
        assert _wait(lambda: _healthz(port)) == 200

        # and it stops on SIGTERM, as a process supervisor and `docker stop` ask it to
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        assert _wait(lambda: not _group_alive(server.pid), 10), "a worker outlived the server"
    finally:
        if _group_alive(server.pid):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def test_the_wsgi_module_loads_the_views_and_freezes_what_lives_as_long_as_the_process():
    # A worker imports registry.wsgi once: the views are imported then, not by its first
    # request, and the objects alive at that point are out of the collector's reach.
    probe = (
        "import gc, sys; import registry.wsgi; "
        "print(gc.get_freeze_count(), 'certificates.api.views' in sys.modules)"
    )
    result = _run([sys.executable, "-c", probe])
    assert result.returncode == 0, result.stderr[-2000:]
    frozen, views_loaded = result.stdout.split()
    assert int(frozen) > 10_000 and views_loaded == "True", result.stdout


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


def test_the_peering_command_works_without_docker(compose):
    # manage.py loads the settings and the command and parses its options (--help exits).
    _script, name, args = _peering(compose, A)
    result = _run([sys.executable, "manage.py", name, *args, "--help"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--discover" in result.stdout


@pytest.mark.parametrize(
    ("allowed_hosts", "host"),
    [
        ("registry.example.org,localhost", "registry.example.org"),
        (" .example.org ", "example.org"),
        ("*", "localhost"),
        ("", "localhost"),
        ("localhost,web-b", "localhost"),
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
