"""Two federated GridProof registries on this machine, like `make run` for one.

    .venv/bin/python scripts/federation_demo.py [--dir .dev/federation-demo]
        [--port-a 8000] [--port-b 8001] [--demo-transfer] [--exit-after-setup]

Registries A and B each get their own SQLite database, origin, Ed25519 signing key
and secret key under --dir (kept, and reused on the next run). Both are migrated and
seeded with the demo data, served by `manage.py runregistry` (periodic tasks in-process,
no broker) with short intervals, and peered both ways as witness, mirror and trading
partner. Then the script prints URLs, keys, logins, API tokens and commands to try, and
shows each registry's checkpoint, anchoring and mirror as they change, until Ctrl-C.

--demo-transfer exports certificates from A's producer to B's buyer through the HTTP API,
waits until B has imported them, and checks both histories with the offline verifier
(`python -m ledger.verify`). --exit-after-setup stops both registries once that is done.

Standard library only (the registries and the verifier are the project's own code, run
as child processes). Variables that would point the registries at other services
(DATABASE_URL, CELERY_BROKER_URL, CACHE_URL, ...) are not passed on to them.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
ROLES = "witness,mirror,partner"
ADMIN = "admin"  # the demo's issuing-body administrator (accounts.demo)
PRODUCER = "producer"  # Sunny Rooftops Cooperative: holds the demo PV plant's certificates
BUYER = "buyer"  # GreenBuy Energy: a trading account to receive them
EXPORT_WH = 1000
# The demo meter's key: assets.demo writes it on the first seed and reads it back.
DEMO_METER_KEY = REPO / ".dev" / "demo-meter-SRC-PV-0001.key"

# Settings the registries read that must come from this script, not from the caller's
# environment (a CI job's PostgreSQL and Redis, a production key, ...).
ENV_DROP_PREFIXES = (
    "DATABASE_URL",
    "SQLITE_PATH",
    "CONN_MAX_AGE",
    "CELERY_",
    "CACHE_URL",
    "LEDGER_",
    "REGISTRY_",
    "FEDERATION_",
    "ANCHOR_",
    "CHECKPOINT_",
    "CERTIFICATE_",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_ENV",
    "DEBUG",
)
SETTINGS = {
    "DJANGO_ENV": "development",
    "DEBUG": "1",
    "CHECKPOINT_INTERVAL_SECONDS": "1",
    "LEDGER_SWEEP_SECONDS": "1",
    "FEDERATION_ANCHOR_INTERVAL_SECONDS": "1",
    "FEDERATION_REPLICATION_INTERVAL_SECONDS": "1",
    "FEDERATION_RETRY_BASE_SECONDS": "1",
    "FEDERATION_RETRY_MAX_SECONDS": "10",
    "FEDERATION_HTTP_TIMEOUT_SECONDS": "5",
    "ANCHOR_QUORUM": "1",
    "FEDERATION_IMPORT_QUORUM": "1",
    "PYTHONUNBUFFERED": "1",
}
# What the env file for `manage.py` by hand unsets besides what it sets.
ENV_UNSET = (
    "CELERY_BROKER_URL",
    "CACHE_URL",
    "LEDGER_KICK_REDIS_URL",
    "REGISTRY_SIGNING_KEY",
    "REGISTRY_WITNESS_KEY",
    "SQLITE_PATH",
    "CONN_MAX_AGE",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DJANGO_SETTINGS_MODULE",
)

CREATE_TOKENS = """
import json
from accounts.models import User
from accounts.services import api_token_create
tokens = {{u: api_token_create(user=User.objects.get(username=u), name="federation demo")[1]
          for u in {users!r}}}
print("TOKENS " + json.dumps(tokens))
"""

UPDATE_PEER = """
from accounts.models import User
from federation import services
from federation.models import Peer
peer = Peer.objects.get(origin={origin!r})
services.peer_update(actor=User.objects.get(username={admin!r}), peer_id=peer.pk, **{fields!r})
print("updated peer", peer.origin)
"""


class DemoError(Exception):
    """Something did not happen as it should; the message says what."""


def shown(path: Path | str) -> str:
    """A path as the user would type it: relative to the working directory if inside it.
    (Symlinks are kept: the virtualenv's python is a link to the system's.)"""
    path = os.path.abspath(path)
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def q(value: str) -> str:
    return shlex.quote(value)


def log(message: str = "") -> None:
    print(message, flush=True)


def http(method: str, url: str, *, token: str = "", body=None, accept="application/json"):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http only
    request.add_header("Accept", accept)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc).encode()


def get_json(url: str, token: str = ""):
    status, body = http("GET", url, token=token)
    if status != 200:
        raise DemoError(f"GET {url}: HTTP {status} {body[:300]!r}")
    return json.loads(body)


def poll(what: str, check, timeout: float = 90.0, interval: float = 0.5):
    """check() until it returns something truthy; DemoError naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except DemoError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise DemoError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the registry gets SIGTERM if this script dies without cleaning up."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def read_secret(path: Path, make) -> str:
    """The value kept in `path` (mode 0600), made by make() on the first run."""
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


@dataclass
class Registry:
    name: str  # "A" or "B"
    port: int
    root: Path  # --dir
    proc: subprocess.Popen | None = None
    identity: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)
    logins: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dir = self.root / self.name.lower()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.origin = f"registry-{self.name.lower()}.localhost/gridproof"
        self.secret_key = read_secret(self.dir / "secret.key", lambda: secrets.token_urlsafe(50))
        self.log_path = self.dir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def settings(self) -> dict:
        return SETTINGS | {
            "DATABASE_URL": f"sqlite:///{(self.dir / 'db.sqlite3').resolve()}",
            "REGISTRY_ORIGIN": self.origin,
            "REGISTRY_NAME": f"GridProof federation demo, registry {self.name}",
            "REGISTRY_BASE_URL": self.url,
            "REGISTRY_SIGNING_KEY_FILE": str((self.dir / "signing.key").resolve()),
            "SECRET_KEY": self.secret_key,
        }

    @property
    def env(self) -> dict:
        base = {k: v for k, v in os.environ.items() if not k.startswith(ENV_DROP_PREFIXES)}
        return base | self.settings

    @property
    def vkey(self) -> str:
        return self.identity["log_vkey"]

    @property
    def witness_vkey(self) -> str:
        return self.identity["witness_vkey"]

    def write_env_file(self) -> Path:
        """A shell file with this registry's settings, for `manage.py` by hand."""
        path = self.dir / "env"
        lines = [f"unset {' '.join(ENV_UNSET)}"]
        lines += [f"export {k}={q(v)}" for k, v in sorted(self.settings.items())]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        return path

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(  # noqa: S603 - our interpreter, our arguments
            [PYTHON, "manage.py", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise DemoError(
                f"registry {self.name}: manage.py {' '.join(args[:2])} failed "
                f"(exit {result.returncode}):\n{(result.stdout + result.stderr)[-3000:]}"
            )
        return result

    # ---------------------------------------------------------------- set-up

    def prepare(self, seed_lock: threading.Lock) -> None:
        """Signing key, migrations, demo data and API tokens; each step idempotent."""
        self.manage("generate_signing_key", "--if-missing")
        self.manage("migrate", "--noinput")
        if DEMO_METER_KEY.is_file():
            self.manage("seed_demo")
        else:  # the first seed writes the demo meter's key: one registry at a time
            with seed_lock:
                self.manage("seed_demo")
        # seed_demo keeps the logins it creates next to the database; demo_logins shows them.
        shown_logins = self.manage("demo_logins").stdout.splitlines()[1:]
        self.logins = [line.strip() for line in shown_logins if " / " in line]
        tokens_file = self.dir / "tokens.json"
        if tokens_file.is_file():
            self.tokens = json.loads(tokens_file.read_text())
        else:
            self.create_tokens([PRODUCER, BUYER])

    def create_tokens(self, users: list[str]) -> None:
        out = self.manage("shell", "-c", CREATE_TOKENS.format(users=users)).stdout
        line = next(line for line in out.splitlines() if line.startswith("TOKENS "))
        self.tokens |= json.loads(line.removeprefix("TOKENS "))
        path = self.dir / "tokens.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(self.tokens, handle, indent=2)

    def check_tokens(self) -> None:
        """Tokens kept from an earlier run that the database does not know are replaced."""
        stale = [
            user
            for user in (PRODUCER, BUYER)
            if http("GET", self.url + "/api/v1/me/", token=self.tokens.get(user, ""))[0] != 200
        ]
        if stale:
            self.create_tokens(stale)

    # ---------------------------------------------------------------- process

    def check_port(self) -> None:
        if not port_free(self.port):
            raise DemoError(
                f"port {self.port} for registry {self.name} is in use (is `make run` or an "
                "earlier demo still running?); choose others with --port-a/--port-b"
            )

    def start(self) -> None:
        self.check_port()
        logfile = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        logfile.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} start =====\n".encode())
        logfile.flush()
        self.proc = subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
            [PYTHON, "manage.py", "runregistry", f"127.0.0.1:{self.port}"],
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches this script, which stops it in order
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        logfile.close()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while http("GET", self.url + "/readyz")[0] != 200:
            if self.proc.poll() is not None:
                raise DemoError(
                    f"registry {self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise DemoError(f"registry {self.name} not ready after 60 s:\n{self.log_tail()}")
            time.sleep(0.25)
        self.identity = get_json(self.url + "/.well-known/gridproof/federation")
        if self.identity["origin"] != self.origin:
            raise DemoError(
                f"{self.url} is {self.identity['origin']}, not registry {self.name} "
                "(another server on this port?)"
            )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.is_file():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(f"    {line}" for line in text)

    # ---------------------------------------------------------------- API

    def api(self, path: str, user: str = ""):
        return get_json(self.url + path, token=self.tokens.get(user, ""))

    def status(self) -> dict:
        return self.api("/api/v1/federation/status/")

    def peer_status(self, other: Registry) -> dict:
        peers = self.status()["peers"]
        found = [p for p in peers if p["peer"]["origin"] == other.origin]
        if not found:
            raise DemoError(f"{self.name} has no peer {other.origin}")
        return found[0]

    def account(self, user: str, kind: str = "trading") -> dict:
        accounts = self.api("/api/v1/accounts/", user)["results"]
        found = [a for a in accounts if a["kind"] == kind and a["status"] == "open"]
        if not found:
            raise DemoError(f"{user} has no open {kind} account at {self.name}")
        return found[0]


# -------------------------------------------------------------------- peering


def _same(value):
    return sorted(value) if isinstance(value, list) else value


def peer(on: Registry, other: Registry) -> str:
    """Register `other` on `on` (discovered from its well-known document); idempotent."""
    peers = on.api("/api/v1/federation/peers/?page_size=200")["results"]
    known = next((p for p in peers if p["origin"] == other.origin), None)
    if known is None:
        on.manage(
            "peer_add",
            "--actor",
            ADMIN,
            "--discover",
            other.url,
            "--roles",
            ROLES,
            "--name",
            f"Registry {other.name} (demo)",
        )
        return "registered"
    wanted = {
        "base_url": other.identity["base_url"],
        "witness_url": other.identity["witness_url"],
        "log_vkey": other.vkey,
        "witness_vkey": other.witness_vkey,
        "roles": ROLES.split(","),
    }
    changes = {k: v for k, v in wanted.items() if _same(v) != _same(known[k])}
    if changes:
        on.manage(
            "shell",
            "-c",
            UPDATE_PEER.format(origin=other.origin, admin=ADMIN, fields=changes),
        )
        return "updated (" + ", ".join(sorted(changes)) + ")"
    if known["status"] != "active":
        return f"already registered, but {known['status']}: {known['status_reason']}"
    return "already registered"


def wait_federated(a: Registry, b: Registry) -> None:
    """Each registry's checkpoint cosigned by the other (anchored) and mirrored by it."""
    for reg, other in ((a, b), (b, a)):
        size = reg.status()["checkpoint_size"]
        anchored = poll(
            f"{reg.name}'s checkpoint {size} to be cosigned by {other.name}",
            lambda reg=reg, size=size: (
                (s := reg.status())["anchored_size"] is not None
                and s["anchored_size"] >= size
                and s["anchored_size"]
            ),
        )
        mirrored = poll(
            f"{other.name} to mirror {reg.name} up to {size}",
            lambda reg=reg, other=other, size=size: (
                (m := other.peer_status(reg)["mirror_size"]) >= size and m
            ),
        )
        log(
            f"  {reg.name}'s checkpoint at size {anchored} is cosigned by {other.name} (anchored); "
            f"{other.name} mirrors {reg.name}'s log up to {mirrored}"
        )


# -------------------------------------------------------------------- verifier


def verify(*args: str) -> tuple[bool, str]:
    result = subprocess.run(  # noqa: S603 - our interpreter, our arguments
        [PYTHON, "-m", "ledger.verify", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.returncode == 0, (result.stdout + result.stderr).strip()


def verify_cmd(*args: str) -> str:
    return " ".join([q(shown(PYTHON)), "-m", "ledger.verify", *(q(a) for a in args)])


def report_verification(label: str, args: list[str]) -> bool:
    ok, out = verify(*args)
    log(f"  $ {verify_cmd(*args)}")
    for line in out.splitlines():
        log(f"    {line}")
    log(f"  offline verification of {label}: {'OK' if ok else 'FAILED'}")
    return ok


def save_json(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc, indent=2))
    return path


# -------------------------------------------------------------------- the demo transfer


def pick_bundle(a: Registry) -> dict:
    account = a.account(PRODUCER)
    bundles = a.api(
        f"/api/v1/bundles/?status=active&account={account['id']}&ordering=-id&page_size=200",
        PRODUCER,
    )["results"]
    usable = [b for b in bundles if b["volume_wh"] >= 1]
    if not usable:
        raise DemoError(f"{PRODUCER} has no active certificates left at {a.name}")
    return max(usable, key=lambda b: b["volume_wh"])


def demo_transfer(a: Registry, b: Registry, workdir: Path) -> bool:
    """Export from A's producer to B's buyer over HTTP; verify both histories offline."""
    log("")
    log(f"Demo transfer: {PRODUCER} at A exports certificates to {BUYER}'s account at B")
    bundle = pick_bundle(a)
    to_account = b.account(BUYER)["number"]
    volume = min(EXPORT_WH, bundle["volume_wh"])
    status, raw = http(
        "POST",
        f"{a.url}/api/v1/bundles/{bundle['id']}/exports/",
        token=a.tokens[PRODUCER],
        body={"destination": b.origin, "destination_account": to_account, "volume_wh": volume},
    )
    if status != 201:
        raise DemoError(f"export refused by A: HTTP {status} {raw[:500]!r}")
    export = json.loads(raw)
    log(
        f"  export #{export['id']}: {volume} Wh of bundle {bundle['id']} to {b.origin} "
        f"account {to_account}, status {export['status']}"
    )
    started = time.monotonic()

    def settled():
        e = a.api(f"/api/v1/exports/{export['id']}/", PRODUCER)
        return e if e["status"] in ("imported", "returned") else None

    done = poll(f"export #{export['id']} to be settled", settled, timeout=120)
    if done["status"] != "imported":
        raise DemoError(f"export #{export['id']} came back: {done['reason']} {done['last_error']}")
    imports = b.api("/api/v1/imports/?page_size=200", BUYER)["results"]
    found = [
        i for i in imports if i["origin"] == a.origin and i["export_seq"] == done["export_seq"]
    ]
    if not found or found[0]["status"] != "imported" or found[0]["account"] != to_account:
        raise DemoError(f"B does not show the import of export #{export['id']}: {found!r}")
    imported = found[0]
    new_bundle = b.api(f"/api/v1/bundles/{imported['bundle']}/")
    if new_bundle["volume_wh"] != volume or new_bundle["status"] != "active":
        raise DemoError(f"the imported bundle at B is not as exported: {new_bundle!r}")
    log(
        f"  export #{export['id']} imported at B after {time.monotonic() - started:.1f} s: "
        f"import #{imported['id']}, bundle {imported['bundle']} ({volume} Wh, active) in "
        f"account {to_account}; A holds B's signed receipt"
    )

    # The histories, once each registry's checkpoint covers every step (all have proofs).
    def complete(h: dict) -> bool:
        return h["pending"] == 0 and all(step["proof"] is not None for step in h["steps"])

    def history_at_b():
        h = b.api(f"/api/v1/bundles/{imported['bundle']}/history/")
        kinds = [step["kind"] for step in h["steps"]]
        return h if complete(h) and "certificate.imported" in kinds else None

    def history_at_a():
        h = a.api(f"/api/v1/bundles/{done['bundle']}/history/")
        kinds = [step["kind"] for step in h["steps"]]
        return h if complete(h) and "certificate.export_completed" in kinds else None

    at_b = poll("B's checkpoint to cover the import", history_at_b)
    at_a = poll("A's checkpoint to cover the export's completion", history_at_a)
    hop = at_b["cross_registry"]["imported"]["provenance"][0]
    folder = workdir / f"transfer-{export['id']}"
    folder.mkdir(exist_ok=True)
    files = {
        "b": save_json(folder / "history-b.json", at_b["verify"]),
        "a-at-b": save_json(folder / "history-a-as-held-by-b.json", hop),
        "a": save_json(folder / "history-a.json", at_a["verify"]),
    }
    log("")
    log("Offline verification (python -m ledger.verify, no network):")
    results = [
        report_verification(
            "the history at B",
            ["history", "--key", b.vkey, "--file", shown(files["b"])],
        ),
        report_verification(
            "A's part of the history, as B holds it",
            [
                "history",
                "--inclusion-only",
                "--key",
                a.vkey,
                "--witness-key",
                b.witness_vkey,
                "--quorum",
                "1",
                "--file",
                shown(files["a-at-b"]),
            ],
        ),
        report_verification(
            "the history at A",
            ["history", "--key", a.vkey, "--file", shown(files["a"])],
        ),
    ]
    if all(results):
        log(
            f"DEMO TRANSFER OK: export #{export['id']} imported at B as bundle "
            f"{imported['bundle']}; histories verified offline at A and at B"
        )
    return all(results)


def verify_federation(a: Registry, b: Registry, workdir: Path) -> bool:
    """Each anchored checkpoint with the other's witness key; each mirror with the log key."""
    log("")
    log("Anchored checkpoints and mirrors, checked with the verifier:")
    results = []
    for reg, other in ((a, b), (b, a)):
        status, raw = http(
            "GET", reg.url + "/api/v1/federation/checkpoint/anchored", accept="text/plain"
        )
        if status != 200:
            raise DemoError(f"{reg.name} has no anchored checkpoint: HTTP {status}")
        note = workdir / f"anchored-{reg.name.lower()}.note"
        note.write_bytes(raw)
        results.append(
            report_verification(
                f"{reg.name}'s anchored checkpoint",
                [
                    "checkpoint",
                    "--key",
                    reg.vkey,
                    "--witness-key",
                    other.witness_vkey,
                    "--quorum",
                    "1",
                    "--file",
                    shown(note),
                ],
            )
        )
        results.append(
            report_verification(
                f"{other.name}'s mirror of {reg.name}",
                ["checkpoint", "--key", reg.vkey, "--url", f"{other.url}/mirrors/{reg.origin}"],
            )
        )
    return all(results)


# -------------------------------------------------------------------- output


def describe(reg: Registry, peering: str) -> None:
    log("")
    log(f"Registry {reg.name}  {reg.url}")
    log(f"  origin         {reg.origin}")
    log(f"  verifier key   {reg.vkey}")
    log(f"  witness key    {reg.witness_vkey}")
    log(f"  status page    {reg.url}/federation/status")
    log(f"  admin          {reg.url}/admin/")
    log(f"  API docs       {reg.url}/api/docs/")
    if reg.logins:
        log(f"  logins         {'   '.join(reg.logins)}")
    else:
        log(f"  logins         created on the first run (not kept in {shown(reg.dir)})")
    for user in (PRODUCER, BUYER):
        log(f"  {user + ' token':<14} {reg.tokens[user]}")
    log(f"  peering        {peering}")
    log(f"  data, keys     {shown(reg.dir)}/ (server log: {shown(reg.log_path)})")
    log(f"  manage.py      (. {q(shown(reg.dir / 'env'))} && {q(shown(PYTHON))} manage.py ...)")


def howto(a: Registry, b: Registry) -> None:
    """Commands to paste (bash, repository root), with this run's ids, tokens and keys."""
    py = q(shown(PYTHON))

    def jq(expr: str) -> str:
        """Print `expr` of the JSON on stdin (`d`), without needing jq."""
        return f"{py} -c {q('import json,sys; d=json.load(sys.stdin); print(' + expr + ')')}"

    bundle = pick_bundle(a)
    account = b.account(BUYER)["number"]
    volume = min(EXPORT_WH, bundle["volume_wh"])
    producer = f"-H 'Authorization: Bearer {a.tokens[PRODUCER]}'"
    buyer = f"-H 'Authorization: Bearer {b.tokens[BUYER]}'"
    body = json.dumps(
        {"destination": b.origin, "destination_account": account, "volume_wh": volume}
    )
    mirror = f"{b.url}/mirrors/{a.origin}"
    export_url = f"{a.url}/api/v1/exports/$EXPORT/"
    get_id, get_status = jq('d["id"]'), jq('d["status"]')
    get_bundle_b = jq('d["destination_reference"]["bundle_id"]')
    get_bundle_a = jq('d["bundle"]')
    get_verify = jq('json.dumps(d["verify"])')
    get_hop = jq('json.dumps(d["cross_registry"]["imported"]["provenance"][0])')
    witness = ["--witness-key", b.witness_vkey, "--quorum", "1"]
    lines = [
        "# 1. A's anchored checkpoint (cosigned by B), verified offline with B's witness key",
        f"curl -s {a.url}/api/v1/federation/checkpoint/anchored > a-anchored.note",
        verify_cmd("checkpoint", "--key", a.vkey, *witness, "--file", "a-anchored.note"),
        "# 2. B's mirror of A's log, checked against A's key (and one entry in it)",
        verify_cmd("checkpoint", "--key", a.vkey, "--url", mirror),
        verify_cmd("inclusion", "--key", a.vkey, "--url", mirror, "--seq", "0"),
        f"# 3. Export {volume} Wh of bundle {bundle['id']} from A's {PRODUCER} to {BUYER}'s "
        f"account {account} at B",
        f"EXPORT=$(curl -s -X POST {a.url}/api/v1/bundles/{bundle['id']}/exports/ {producer} "
        f"-H 'Content-Type: application/json' -d {q(body)} | {get_id}); echo export $EXPORT",
        '# 4. The export at A: "pending", then "imported" once B has taken it (a few seconds)',
        f"curl -s {export_url} {producer} | {get_status}",
        "# 5. The import at B, in the buyer's account",
        f"curl -s {b.url}/api/v1/imports/ {buyer}",
        "# 6. The histories, verified offline: at B, A's part as B holds it, and at A",
        f"BUNDLE_B=$(curl -s {export_url} {producer} | {get_bundle_b})",
        f"BUNDLE_A=$(curl -s {export_url} {producer} | {get_bundle_a})",
        f"curl -s {b.url}/api/v1/bundles/$BUNDLE_B/history/ | {get_verify} > history-b.json",
        verify_cmd("history", "--key", b.vkey, "--file", "history-b.json"),
        f"curl -s {b.url}/api/v1/bundles/$BUNDLE_B/history/ | {get_hop} > history-a-at-b.json",
        verify_cmd("history", "--key", a.vkey, *witness, "--file", "history-a-at-b.json"),
        f"curl -s {a.url}/api/v1/bundles/$BUNDLE_A/history/ | {get_verify} > history-a.json",
        verify_cmd("history", "--key", a.vkey, "--file", "history-a.json"),
    ]
    log("")
    log("Try it (bash, from the repository root; the histories need the export imported):")
    for line in lines:
        log(f"  {line}")


def watch(a: Registry, b: Registry, stop: threading.Event) -> None:
    """A line whenever a checkpoint, anchor or mirror moves, until `stop` is set."""
    last = None
    while not stop.is_set():
        parts = []
        try:
            for reg, other in ((a, b), (b, a)):
                s = reg.status()
                p = next(p for p in s["peers"] if p["peer"]["origin"] == other.origin)
                parts.append(
                    f"{reg.name}: checkpoint {s['checkpoint_size']}, anchored "
                    f"{s['anchored_size']} (cosigned by {other.name} up to {p['witness_size']}), "
                    f"mirror of {other.name} {p['mirror_size']}"
                )
        except (DemoError, StopIteration, KeyError, ValueError) as exc:
            parts = [f"status unavailable: {exc}"]
        line = "  |  ".join(parts)
        if line != last and not stop.is_set():
            log(f"{time.strftime('%H:%M:%S')}  {line}")
            last = line
        stop.wait(2)


# -------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Start two federated GridProof registries with demo data (no Docker).",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=REPO / ".dev" / "federation-demo",
        help="where databases, keys, tokens and logs are kept (default .dev/federation-demo)",
    )
    parser.add_argument("--port-a", type=int, default=8000)
    parser.add_argument("--port-b", type=int, default=8001)
    parser.add_argument(
        "--demo-transfer",
        action="store_true",
        help="export certificates from A to B over the API and verify the histories offline",
    )
    parser.add_argument(
        "--exit-after-setup",
        action="store_true",
        help="stop both registries once set up (and the demo transfer done)",
    )
    args = parser.parse_args(argv)
    if args.port_a == args.port_b:
        parser.error("--port-a and --port-b must differ")
    return args


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    workdir = args.dir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    a = Registry("A", args.port_a, workdir)
    b = Registry("B", args.port_b, workdir)
    registries = (a, b)
    started = time.monotonic()
    stop_watching = threading.Event()
    try:
        for reg in registries:  # fail before the set-up, not after it
            reg.check_port()
        log(f"Setting up registries A and B in {shown(workdir)} (migrate, demo data, keys)...")
        errors: list[BaseException] = []
        lock = threading.Lock()

        def prepare(reg: Registry) -> None:
            try:
                reg.prepare(lock)
            except BaseException as exc:  # re-raised below
                errors.append(exc)

        threads = [threading.Thread(target=prepare, args=(reg,)) for reg in registries]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        for reg in registries:
            reg.write_env_file()
            reg.start()
        for reg in registries:
            reg.wait_ready()
            reg.check_tokens()
        log(f"Both registries are serving ({time.monotonic() - started:.1f} s). Peering...")
        peering = {a.name: peer(a, b), b.name: peer(b, a)}
        for reg, other in ((a, b), (b, a)):
            log(f"  {other.name} on {reg.name} as {ROLES}: {peering[reg.name]}")
        wait_federated(a, b)
        for reg, other in ((a, b), (b, a)):
            describe(reg, f"{other.name} ({other.origin}) as {ROLES}: {peering[reg.name]}")
        howto(a, b)
        if args.demo_transfer and not (
            verify_federation(a, b, workdir) and demo_transfer(a, b, workdir)
        ):
            raise DemoError("offline verification failed (see above)")
        log("")
        if args.exit_after_setup:
            log(f"Set-up done in {time.monotonic() - started:.1f} s; stopping both registries.")
            return 0
        log(
            f"Registries A ({a.url}) and B ({b.url}) are running; Ctrl-C stops both. "
            "Checkpoints, anchoring and mirrors as they change:"
        )
        watcher = threading.Thread(target=watch, args=(a, b, stop_watching), daemon=True)
        watcher.start()
        while all(reg.proc.poll() is None for reg in registries):
            time.sleep(0.5)
        stop_watching.set()
        dead = next(reg for reg in registries if reg.proc.poll() is not None)
        raise DemoError(
            f"registry {dead.name} exited with {dead.proc.returncode}:\n{dead.log_tail()}"
        )
    except KeyboardInterrupt:
        log("\nStopping both registries...")
        return 0
    except DemoError as exc:
        log(f"\nERROR: {exc}")
        for reg in registries:
            if reg.proc is not None:  # started in this run
                log(f"--- last lines of {shown(reg.log_path)} ---\n{reg.log_tail()}")
        return 1
    finally:
        stop_watching.set()
        for reg in registries:
            reg.stop()
        log("Registries stopped.")


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
