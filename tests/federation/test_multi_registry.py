"""Three real registries on 127.0.0.1, federated: witnessing, anchoring, mirroring, faults.

Each registry is Granian (production's web server) + a Celery worker + Celery beat over
Redis, on its own PostgreSQL database (created here from one migrated template), with its
own origin, signing key, port and Redis database. They are peered through the API, then:

1. A's checkpoints are witnessed by B and C and anchored with a 2-of-2 quorum; the
   anchored note passes the offline verifier with both witness keys;
2. B and C mirror A; B's mirror passes the offline verifier over real HTTP;
3. C is stopped while it is mirroring a burst of A's entries: B goes on, A's anchoring
   waits for C and retries (nothing anchored without it, nothing lost), and when C is back
   it catches up and A's latest checkpoint is anchored by both;
4. a producer at A exports certificates to a buyer's account at B: delivered once A's
   checkpoint is anchored, verified and imported at B, settled at A by B's signed
   receipt; both histories, and A's part as B holds it, pass the offline verifier; the
   same export replayed is refused at B (409) and at C (not a trading partner); an export
   to an account B does not have comes back to A;
5. A's database is tampered with (one entry's bytes): B detects the forged entry, keeps
   the evidence, flags A and stores nothing of the bad batch.

Needs PostgreSQL (DATABASE_URL) and Redis (CELERY_BROKER_URL); skipped otherwise.
FEDERATION_TEST_REDIS_DBS (default "11,12,13") picks the Redis databases it flushes.
"""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings

from ledger.signing import generate_private_key

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEADLINE = 60.0

pytestmark = [pytest.mark.postgres, pytest.mark.celery_worker, pytest.mark.timeout(300)]


def _skip_reason() -> str | None:
    if not settings.USING_POSTGRES:
        return "needs PostgreSQL: set DATABASE_URL=postgres://... (three databases are created)"
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        return "needs Redis: set CELERY_BROKER_URL=redis://host:port/n (workers and beat use it)"
    try:
        import redis

        redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2).ping()
    except Exception as exc:
        return f"needs a reachable Redis at CELERY_BROKER_URL: {exc}"
    if not shutil.which("granian", path=str(BIN)) or not shutil.which("celery", path=str(BIN)):
        return "needs granian and celery next to the Python interpreter"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, *, token: str = "", body=None, accept="application/json"):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
    request.add_header("Accept", accept)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc).encode()


def get_json(url: str, **kwargs):
    status, body = http("GET", url, **kwargs)
    assert status == 200, f"GET {url}: {status} {body[:300]!r}"
    return json.loads(body)


def poll(what: str, check, timeout: float = DEADLINE, interval: float = 0.25):
    """check() until it returns something truthy; fail naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except AssertionError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


@dataclass
class Registry:
    name: str
    origin: str
    port: int
    database_url: str
    redis_url: str
    workdir: Path
    extra_env: dict = field(default_factory=dict)
    private_key: str = ""
    vkey: str = ""
    token: str = ""
    procs: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.private_key, self.vkey = generate_private_key(self.origin)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict:
        return (
            os.environ
            | {
                "DJANGO_ENV": "development",
                "DATABASE_URL": self.database_url,
                "CELERY_BROKER_URL": self.redis_url,
                "SECRET_KEY": f"multi-registry-test-{self.name}",
                "REGISTRY_ORIGIN": self.origin,
                "REGISTRY_SIGNING_KEY": self.private_key,
                "REGISTRY_BASE_URL": self.url,
                "CHECKPOINT_INTERVAL_SECONDS": "1",
                "LEDGER_SWEEP_SECONDS": "1",
                "FEDERATION_ANCHOR_INTERVAL_SECONDS": "1",
                "FEDERATION_REPLICATION_INTERVAL_SECONDS": "1",
                "FEDERATION_RETRY_BASE_SECONDS": "0.5",
                "FEDERATION_RETRY_MAX_SECONDS": "2",
                "FEDERATION_HTTP_TIMEOUT_SECONDS": "2",
                "THROTTLE_ANON": "1000000/minute",
                "THROTTLE_USER": "1000000/minute",
                "LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
            | self.extra_env
        )

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"{self.name} manage.py {args[0]}: {result.stderr[-3000:]}"
        return result.stdout

    def _spawn(self, label: str, argv: list[str]) -> None:
        log = open(self.workdir / f"{self.name}-{label}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.procs.append(proc)

    def start(self) -> None:
        self._spawn(
            "web",
            [
                str(BIN / "granian"),
                *("--interface", "wsgi", "--host", "127.0.0.1", "--port", str(self.port)),
                *("--workers", "2", "--blocking-threads", "4", "--no-ws"),
                "registry.wsgi:application",
            ],
        )
        self._spawn(
            "worker",
            [
                str(BIN / "celery"),
                "-A",
                "registry",
                "worker",
                "--pool=threads",
                "--concurrency=6",
                "-n",
                f"{self.name}@%h",
                "--loglevel=INFO",
            ],
        )
        self._spawn(
            "beat",
            [
                str(BIN / "celery"),
                "-A",
                "registry",
                "beat",
                "--loglevel=INFO",
                "-s",
                str(self.workdir / f"{self.name}-beat-schedule"),
            ],
        )

    def terminate(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)

    def stop(self) -> None:
        self.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs = []

    def logs(self) -> str:
        parts = []
        for path in sorted(self.workdir.glob(f"{self.name}-*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"----- {path.name} (last 4000 chars) -----\n{text[-4000:]}")
        return "\n".join(parts)

    def api(self, path: str):
        return get_json(self.url + path, token=self.token)

    def post(self, path: str, body) -> dict:
        status, raw = http("POST", self.url + path, token=self.token, body=body)
        assert status in (200, 201), f"{self.name} POST {path}: {status} {raw[:500]!r}"
        return json.loads(raw)

    def text(self, path: str) -> str:
        status, raw = http("GET", self.url + path, accept="text/plain")
        assert status == 200, f"{self.name} GET {path}: {status} {raw[:300]!r}"
        return raw.decode()

    def checkpoint_size(self) -> int:
        return int(self.text("/api/v1/ledger/checkpoint").split("\n")[1])

    def peer(self, origin: str) -> dict:
        peers = self.api("/api/v1/federation/status/")["peers"]
        return next(p for p in peers if p["peer"]["origin"] == origin)


BOOTSTRAP = """
from accounts.models import User
from accounts.services import api_token_create, issuing_body_bootstrap
admin = User.objects.create_user(username="operator", password=None)
issuing_body_bootstrap(legal_name="Issuing body {name}", country="DE",
                       registration_id="IB-{name}", admin=admin)
print(api_token_create(user=admin, name="federation test")[1])
"""


# Certificates to export (A) and an account to receive them (B): test factories, set-up only.
SETUP_PRODUCER = """
import datetime as dt
from fractions import Fraction
from accounts.models import User
from accounts.services import api_token_create
from certificates import services
from certificates.models import Bundle
from tests.certificates.factories import DAY, add_readings, device_with_owners, holder
device, (account,) = device_with_owners([Fraction(1)])
add_readings(device, hours=2)
services.certificate_issue(actor=User.objects.get(username="operator"), device_id=device.pk,
                           period_start=DAY, period_end=DAY + dt.timedelta(hours=2))
bundles = Bundle.objects.filter(account=account).order_by("pk")
print(api_token_create(user=holder(account), name="producer")[1], *[b.pk for b in bundles])
"""

SETUP_BUYER = """
from accounts.services import api_token_create
from tests.certificates.factories import holder
from tests.factories import AccountFactory
account = AccountFactory()
print(api_token_create(user=holder(account), name="buyer")[1], account.number)
"""

# The exporter sends the same package again, to the destination and to another registry.
REPLAY_EXPORT = """
import json, time
from certificates.models import CertificateExport
from federation import client, transfers
from federation.models import Peer
from federation.peer_requests import sign_request
from ledger.keys import registry_signer
export = CertificateExport.objects.get(pk={export_id})
body = json.dumps(transfers.export_package_build(export)).encode()
for origin in {origins!r}:
    peer = Peer.objects.get(origin=origin)
    headers = sign_request(registry_signer(), to=origin, method="POST",
                           path=transfers.TRANSFERS_PATH, body=body, time=int(time.time()))
    answer = client.post(client.join(peer.base_url, transfers.TRANSFERS_PATH), body,
                         limits=client.Limits(), content_type="application/json",
                         headers=headers)
    print(origin, answer.status, answer.json().get("code"))
"""


class Cluster:
    """Databases, Redis and the three registries; torn down whatever happens."""

    def __init__(self, workdir: Path) -> None:
        import psycopg2

        self.psycopg2 = psycopg2
        url = urllib.parse.urlsplit(settings.CELERY_BROKER_URL)
        dbs = os.environ.get("FEDERATION_TEST_REDIS_DBS", "11,12,13").split(",")
        self.redis_urls = [f"redis://{url.netloc}/{int(n)}" for n in dbs]
        db = settings.DATABASES["default"]
        self.pg = {
            "host": db["HOST"] or "127.0.0.1",
            "port": db["PORT"] or 5432,
            "user": db["USER"] or "postgres",
            "password": db["PASSWORD"] or None,
        }
        self.prefix = f"gp_fed_{os.getpid()}"
        self.workdir = workdir
        self.registries: list[Registry] = []

    def _admin_sql(self, *statements: str) -> None:
        conn = self.psycopg2.connect(dbname="postgres", **self.pg)
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
        finally:
            conn.close()

    def database_url(self, name: str) -> str:
        auth = self.pg["user"] + (f":{self.pg['password']}" if self.pg["password"] else "")
        return f"postgres://{auth}@{self.pg['host']}:{self.pg['port']}/{self.prefix}_{name}"

    def sql(self, registry: Registry, statement: str, params=()) -> None:
        conn = self.psycopg2.connect(dbname=f"{self.prefix}_{registry.name}", **self.pg)
        try:
            with conn, conn.cursor() as cursor:
                cursor.execute(statement, params)
        finally:
            conn.close()

    def flush_redis(self) -> None:
        import redis

        for url in self.redis_urls:
            redis.Redis.from_url(url).flushdb()

    def up(self) -> list[Registry]:
        self.flush_redis()
        names = ["a", "b", "c"]
        self._admin_sql(
            *[f"DROP DATABASE IF EXISTS {self.prefix}_{n} WITH (FORCE)" for n in [*names, "tpl"]],
            f"CREATE DATABASE {self.prefix}_tpl",
        )
        template = Registry(
            "tpl",
            "template.test/registry",
            0,
            self.database_url("tpl"),
            self.redis_urls[0],
            self.workdir,
        )
        template.manage("migrate", "--noinput")
        # A template is no registry yet: each copy records itself as the database that
        # signs when it first signs (ledger/fence.py), rather than inheriting the template's.
        self.sql(template, "DELETE FROM ledger_signingfence")
        self._admin_sql(
            *[f"CREATE DATABASE {self.prefix}_{n} TEMPLATE {self.prefix}_tpl" for n in names]
        )
        for name, redis_url in zip(names, self.redis_urls, strict=True):
            extra = {"ANCHOR_QUORUM": "2"} if name == "a" else {}
            if name == "b":
                extra |= {"FEDERATION_IMPORT_QUORUM": "2"}
            if name == "c":
                # C replicates in small steps, so that it can be stopped mid-way.
                extra |= {
                    "FEDERATION_REPLICATION_MAX_ENTRIES": "1000",
                    "FEDERATION_REPLICATION_BATCH_SIZE": "500",
                }
            registry = Registry(
                name,
                f"registry-{name}.test/gridproof",
                free_port(),
                self.database_url(name),
                redis_url,
                self.workdir,
                extra,
            )
            registry.token = (
                registry.manage("shell", "-c", BOOTSTRAP.format(name=name)).strip().splitlines()[-1]
            )
            self.registries.append(registry)
        for registry in self.registries:
            registry.start()
        for registry in self.registries:
            poll(
                f"{registry.name} to serve",
                lambda r=registry: http("GET", r.url + "/readyz")[0] == 200,
            )
        return self.registries

    def append_events(self, registry: Registry, count: int, tag: str) -> None:
        """Queue `count` events straight into the registry's pending queue (fast test data);
        its integrator numbers them and its beat signs the next checkpoint."""
        rows = [
            (
                "test.generated",
                "[]",
                "system:test",
                json.dumps(
                    {
                        "actor": "system:test",
                        "data": {"i": i, "tag": tag},
                        "subject": [],
                        "type": "test.generated",
                    },
                    sort_keys=True,
                    separators=(",", ":"),
                ).encode(),
            )
            for i in range(count)
        ]
        conn = self.psycopg2.connect(dbname=f"{self.prefix}_{registry.name}", **self.pg)
        try:
            with conn, conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO ledger_pendingevent (kind, subjects, actor, event, created_at) "
                    "VALUES (%s, %s::jsonb, %s, %s, now())",
                    rows,
                )
        finally:
            conn.close()

    def down(self) -> None:
        for registry in self.registries:
            registry.terminate()
        for registry in self.registries:
            registry.stop()
        self._admin_sql(
            *[
                f"DROP DATABASE IF EXISTS {self.prefix}_{n} WITH (FORCE)"
                for n in ["a", "b", "c", "tpl"]
            ]
        )
        self.flush_redis()

    def logs(self) -> str:
        return "\n".join(registry.logs() for registry in self.registries)


@pytest.fixture
def cluster(tmp_path):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    cluster = Cluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.down()


def identity(registry: Registry) -> dict:
    return get_json(registry.url + "/.well-known/gridproof/federation")


def register(on: Registry, other: Registry, roles: list[str]) -> int:
    found = identity(other)
    body = {
        "origin": found["origin"],
        "base_url": found["base_url"],
        "log_vkey": found["log_vkey"],
        "witness_vkey": found["witness_vkey"],
        "roles": roles,
    }
    return on.post("/api/v1/federation/peers/", body)["id"]


def verify_cli(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "ledger.verify", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"verifier: {result.stdout}{result.stderr}"
    return result.stdout


def test_three_registries_witness_anchor_and_mirror(cluster, tmp_path):
    started = time.monotonic()
    a, b, c = cluster.up()
    try:
        _scenario(cluster, a, b, c, tmp_path)
    except BaseException:
        print(cluster.logs())
        raise
    print(f"multi-registry scenario: {time.monotonic() - started:.1f} s")


def anchored(a: Registry) -> dict | None:
    status, raw = http("GET", a.url + "/api/v1/federation/checkpoint/anchored?format=json")
    return json.loads(raw) if status == 200 else None


def _scenario(cluster: Cluster, a: Registry, b: Registry, c: Registry, tmp_path: Path) -> None:
    # --- peering: B and C witness A (quorum 2 on A) and mirror it; A and B trade
    register(a, b, ["witness", "partner"])
    register(a, c, ["witness"])
    a_on_b = register(b, a, ["mirror", "partner"])
    a_on_c = register(c, a, ["mirror"])
    assert identity(a)["log_vkey"] == a.vkey

    # --- 1. witnessing and anchoring, 2 of 2
    cluster.append_events(a, 50, "first")
    poll("A's checkpoint to cover the first events", lambda: a.checkpoint_size() >= 50)
    size = a.checkpoint_size()
    doc = poll(
        "A's checkpoint to be anchored by B and C",
        lambda: (d := anchored(a)) and d["size"] >= size and d,
    )
    assert sorted(cs["witness"] for cs in doc["cosignatures"]) == [b.origin, c.origin]
    note_path = tmp_path / "anchored.note"
    note_path.write_text(a.text("/api/v1/federation/checkpoint/anchored"))
    out = verify_cli(
        "checkpoint",
        "--key",
        a.vkey,
        "--witness-key",
        identity(b)["witness_vkey"],
        "--witness-key",
        identity(c)["witness_vkey"],
        "--quorum",
        "2",
        "--file",
        str(note_path),
    )
    assert "cosigned by" in out
    # B and C kept what they witnessed
    assert b.peer(a.origin)["witnessed_size"] >= size
    assert c.peer(a.origin)["witnessed_size"] >= size

    # --- 2. mirroring: B's mirror of A matches A and passes the offline verifier
    poll("B to mirror A", lambda: b.peer(a.origin)["mirror_size"] >= size)
    mirror = f"{b.url}/mirrors/{a.origin}"
    out = verify_cli("checkpoint", "--key", a.vkey, "--url", mirror)
    assert a.origin in out
    verify_cli("inclusion", "--key", a.vkey, "--url", mirror, "--seq", "7")

    # --- 3. C stops in the middle of mirroring a burst; B goes on; A's anchoring waits
    anchored_before = anchored(a)["size"]
    cluster.append_events(a, 20_000, "burst")
    poll(
        "A to integrate and sign the burst",
        lambda: a.checkpoint_size() >= size + 20_000,
        timeout=90,
    )
    burst = a.checkpoint_size()
    poll(
        "C to be mid-way through the burst",
        lambda: size < c.peer(a.origin)["mirror_size"] < burst,
        interval=0.1,
    )
    c.stop()
    # A grows while C is down: B goes on mirroring and cosigning; A cannot anchor without C
    cluster.append_events(a, 10, "while C is down")
    poll("A's checkpoint to grow", lambda: a.checkpoint_size() >= burst + 10)
    grown = a.checkpoint_size()
    poll("B to mirror it all", lambda: b.peer(a.origin)["mirror_size"] >= grown, timeout=90)
    poll("B to cosign it", lambda: a.peer(b.origin)["witness_size"] >= grown)
    # A keeps trying C, backing off, and anchors nothing new without it
    poll(
        "A to record C's failure",
        lambda: (w := a.peer(c.origin))["witness_last_error"] and w["witness_lag_entries"] > 0,
    )
    time.sleep(2)
    assert anchored(a)["size"] < grown
    assert a.peer(c.origin)["witness_size"] < grown
    # C comes back: it catches up, and A's latest checkpoint is anchored by both
    c.start()
    poll("C to serve again", lambda: http("GET", c.url + "/readyz")[0] == 200)
    latest = a.checkpoint_size()
    poll("C to catch up with A", lambda: c.peer(a.origin)["mirror_size"] >= latest, timeout=90)
    doc = poll(
        "A's latest checkpoint to be anchored after C returned",
        lambda: (d := anchored(a)) and d["size"] >= latest and d,
    )
    assert doc["size"] > anchored_before
    assert sorted(cs["witness"] for cs in doc["cosignatures"]) == [b.origin, c.origin]
    status = a.api("/api/v1/federation/status/")
    assert status["anchoring_delay"]["count"] > 0 and status["anchoring_delay"]["pending"] == 0
    assert not b.api("/api/v1/federation/evidence/")["results"]
    assert not c.api("/api/v1/federation/evidence/")["results"]

    # --- 4. a certificate export from A to B, replayed, and one refused
    _cross_registry_transfer(cluster, a, b, c, tmp_path)

    # --- 5. A's database is tampered with: B detects the forged entry and stores nothing
    latest = a.checkpoint_size()
    poll("B to be up to date", lambda: b.peer(a.origin)["mirror_size"] >= latest)
    for mirror_registry, peer_id in ((b, a_on_b), (c, a_on_c)):
        mirror_registry.post(f"/api/v1/federation/peers/{peer_id}/suspend/", {"reason": "test"})
    mirrored = b.peer(a.origin)["mirror_size"]
    cluster.append_events(a, 5, "to forge")
    poll("A to sign the entries to forge", lambda: a.checkpoint_size() >= mirrored + 5)
    forged_seq = mirrored + 2
    cluster.sql(
        a,
        "ALTER TABLE ledger_ledgerentry DISABLE TRIGGER ledger_ledgerentry_append_only; "
        "UPDATE ledger_ledgerentry SET event = %s WHERE seq = %s; "
        "ALTER TABLE ledger_ledgerentry ENABLE TRIGGER ledger_ledgerentry_append_only",
        [b'{"forged":true}', forged_seq],
    )
    b.post(f"/api/v1/federation/peers/{a_on_b}/reinstate/", {"reason": "test"})
    evidence = poll(
        "B to record forged entries",
        lambda: b.api("/api/v1/federation/evidence/?kind=forged_entries")["results"],
    )
    detail = b.api(f"/api/v1/federation/evidence/{evidence[0]['id']}/")
    assert detail["origin"] == a.origin
    assert detail["data"]["start"] <= forged_seq < detail["data"]["end"]
    assert b'{"forged":true}' in base64.b64decode(detail["payload_b64"])
    assert b.peer(a.origin)["peer"]["status"] == "flagged"
    assert b.peer(a.origin)["mirror_size"] == mirrored
    status, _ = http("GET", f"{mirror}/api/v1/ledger/entries/{forged_seq}/")
    assert status == 404


def _history_file(tmp_path: Path, name: str, history: dict) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(history))
    return str(path)


def _cross_registry_transfer(
    cluster: Cluster, a: Registry, b: Registry, c: Registry, tmp_path: Path
) -> None:
    # B also knows C's witness key: an import needs 2 cosignatures B trusts (itself and C)
    register(b, c, [])
    producer_token, bundle_id, spare_id = a.manage("shell", "-c", SETUP_PRODUCER).split()[-3:]
    buyer_token, buyer_account = b.manage("shell", "-c", SETUP_BUYER).split()[-2:]
    producer = Registry.__new__(Registry)
    producer.__dict__.update(a.__dict__, token=producer_token)
    buyer = Registry.__new__(Registry)
    buyer.__dict__.update(b.__dict__, token=buyer_token)

    export = producer.post(
        f"/api/v1/bundles/{bundle_id}/exports/",
        {"destination": b.origin, "destination_account": buyer_account, "volume_wh": 100},
    )
    assert export["status"] == "pending"
    # the units are exported at once: they cannot move at A any more
    status, raw = http(
        "POST",
        f"{a.url}/api/v1/bundles/{export['bundle']}/transfers/",
        token=producer_token,
        body={"to_account": buyer_account},
    )
    assert status == 409 and json.loads(raw)["code"] == "bundle_not_active"
    done = poll(
        "A's export to be imported at B and settled by B's receipt",
        lambda: (
            (e := producer.api(f"/api/v1/exports/{export['id']}/"))["status"] == "imported" and e
        ),
    )
    assert done["destination_reference"]["account"] == buyer_account
    imported = buyer.api("/api/v1/imports/")["results"]
    assert len(imported) == 1 and imported[0]["status"] == "imported"
    assert imported[0]["origin"] == a.origin and imported[0]["export_seq"] == done["export_seq"]
    new_bundle = buyer.api(f"/api/v1/bundles/{imported[0]['bundle']}/")
    assert new_bundle["volume_wh"] == 100 and new_bundle["status"] == "active"
    assert done["destination_reference"]["bundle_id"] == new_bundle["id"]
    assert get_json(done["destination_reference"]["history_url"])["bundle_ids"] == [
        new_bundle["id"]
    ]

    # both sides show the whole history, and each part verifies offline with its key
    poll(
        "B's checkpoint to cover the import",
        lambda: b.api(f"/api/v1/bundles/{new_bundle['id']}/history/")["verify"]["entries"],
    )
    at_b = b.api(f"/api/v1/bundles/{new_bundle['id']}/history/")
    hop = at_b["cross_registry"]["imported"]["provenance"][0]
    kinds = [json.loads(base64.b64decode(e["event_b64"]))["type"] for e in hop["entries"]]
    assert kinds == ["certificate.issued", "certificate.exported"]
    # the note names each cosigner by its witness key, apart from its log (REGISTRY_WITNESS_KEY)
    assert sorted(hop["cosigners"]) == [f"{b.origin}/witness", f"{c.origin}/witness"]
    witness_keys = ["--witness-key", identity(b)["witness_vkey"]]
    witness_keys += ["--witness-key", identity(c)["witness_vkey"], "--quorum", "2"]
    out = verify_cli(
        "history",
        "--inclusion-only",  # A's part as B holds it: the package carries no completeness proof
        "--key",
        a.vkey,
        *witness_keys,
        "--file",
        _history_file(tmp_path, "a-hop", hop),
    )
    assert "cosigned by" in out
    verify_cli("history", "--key", b.vkey, "--file", _history_file(tmp_path, "b", at_b["verify"]))
    at_a = a.api(f"/api/v1/bundles/{export['bundle']}/history/")
    assert at_a["cross_registry"]["exported"]["status"] == "imported"
    poll(
        "A's checkpoint to cover the export's completion",
        lambda: (
            "certificate.export_completed"
            in [s["kind"] for s in a.api(f"/api/v1/bundles/{export['bundle']}/history/")["steps"]]
            and a.api(f"/api/v1/bundles/{export['bundle']}/history/")["pending"] == 0
        ),
    )
    at_a = a.api(f"/api/v1/bundles/{export['bundle']}/history/")
    verify_cli("history", "--key", a.vkey, "--file", _history_file(tmp_path, "a", at_a["verify"]))

    # the same export again: refused by B (imported once) and by C (no trading partner)
    replies = a.manage(
        "shell", "-c", REPLAY_EXPORT.format(export_id=export["id"], origins=[b.origin, c.origin])
    )
    assert f"{b.origin} 409 export_already_imported" in replies
    assert f"{c.origin} 403 transfer_peer_not_partner" in replies
    assert len(buyer.api("/api/v1/imports/")["results"]) == 1

    # an export to an account B does not have comes back to A, with B's signed refusal
    refused = producer.post(
        f"/api/v1/bundles/{spare_id}/exports/",
        {"destination": b.origin, "destination_account": "NO-SUCH-ACCOUNT"},
    )
    back = poll(
        "B's refusal to return the units to A",
        lambda: (
            (e := producer.api(f"/api/v1/exports/{refused['id']}/"))["status"] == "returned" and e
        ),
    )
    assert back["reason"] == "account_not_found" and "outcome rejected" in back["receipt"]
    assert producer.api(f"/api/v1/bundles/{spare_id}/")["status"] == "active"
