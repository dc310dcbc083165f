"""GridProof against the EnergyTag reference registry over HTTP, side by side (issue 16).

    DJANGO_ENV=development CELERY_BROKER_URL=redis://127.0.0.1:6379/3 \\
        DATABASE_URL=postgres://postgres@127.0.0.1:5432/gp_bench_reference \\
        .venv/bin/python benchmarks/reference_registry_bench.py \\
        --reference-url 1=http://127.0.0.1:8101 --reference-url 2=http://127.0.0.1:8102 \\
        --reference-user 1 [--workers 1 2] [--seconds 5] [--rounds 3] [--clients 4] \
        [--server granian|gunicorn] [--worker-class sync|gthread] [--kinds gp_read ...] [--smoke]

The reference registry (the FEA Granular Certificate Demonstration Registry, FastAPI) runs
outside this repository: start it under uvicorn with 1 and 2 workers and give each base URL
as `WORKERS=URL` (a bare URL serves every worker count). benchmarks/README.md says how to
set it up. Its user API answers 500 after creating a user, so the user id is an option;
everything else (two accounts, the source whitelisted by the target, a device, issuance
metadata and the bundles) is created here through its API before the clock starts.

GridProof runs on loopback under Granian with 4 blocking threads a worker (production's
web server, docs/operations.md), or with `--server gunicorn` under gunicorn's gthread
workers of 4 threads (`--worker-class sync`: one request at a time each, as the earliest
figures in benchmarks/README.md were measured), 1 then 2 workers. Each
round sends, one kind after the other for `--seconds` each, from `--clients` closed-loop
clients, every request on a new connection:

- GridProof `GET /api/v1/bundles/{id}/` (a random bundle), with a Bearer token and
  anonymously (bundles are public; the reference authenticates nothing);
- the reference's one-bundle read: it has no GET for a bundle, so `POST /certificate/query`
  narrowed to one bundle (account, device, its hour), the way its README reads bundles;
- the bare DRF endpoint (`/bench/read/`: same authentication and throttling, one
  primary-key read) and the reference's `GET /account/{id}` (its one-row read by key);
  the same token check and read in a plain Django view (`/bench/django-read/`), which
  shows what DRF's dispatch adds to every API request;
- transfers of 1 Wh split off a fresh bundle to another organisation's account: GridProof
  `POST /api/v1/bundles/{id}/transfers/` (one transaction with its ledger event; with
  CELERY_BROKER_URL the commit kicks the integrator as in production), the reference
  `POST /certificate/transfer` with `certificate_quantity` 1;
- retirements of a whole fresh bundle: GridProof `POST /api/v1/bundles/{id}/retirements/`,
  the reference `POST /certificate/cancel`.

Printed per worker count: req/s (median of the rounds), p50/p99 (all rounds), the ratios
the issue aims at and the load average. Afterwards the stored transfers and retirements
of both registries are counted against the 2xx answers. Without --reference-url only
GridProof's side runs; --smoke runs that with tiny sizes (CI; the figures mean nothing).
`--kinds` keeps only some kinds, e.g. one to profile a server worker with py-spy.
"""

import argparse
import datetime as dt
import json
import os
import random
import statistics
import time
import urllib.parse
from dataclasses import dataclass, field

import http_support
import support
from support import SMOKE_HELP, apply_smoke, ensure_database, setup_django

HOUR = dt.timedelta(hours=1)
JSON = {"Content-Type": "application/json"}
KINDS = (
    ("gp_read", "GridProof GET /bundles/{id}/ (token)"),
    ("gp_read_anon", "GridProof GET /bundles/{id}/ (anonymous)"),
    ("ref_read", "reference POST /certificate/query (1 bundle)"),
    ("bare", "bare DRF read (baseline)"),
    ("django_bare", "bare Django read, no DRF (baseline)"),
    ("ref_bare", "reference GET /account/{id}"),
    ("gp_transfer", "GridProof transfer (split 1 Wh)"),
    ("ref_transfer", "reference transfer (split 1 Wh)"),
    ("gp_retire", "GridProof retirement (whole)"),
    ("ref_retire", "reference cancel (whole)"),
)
RATIOS = (
    ("gp_read", "ref_read", "one-bundle read, GridProof / reference", 2.0),
    ("gp_read_anon", "ref_read", "anonymous read (no auth, as the reference)", 2.0),
    ("gp_read", "bare", "one-bundle read / bare DRF read", 0.6),
    ("gp_transfer", "ref_transfer", "transfer, GridProof / reference", 10.0),
    ("gp_retire", "ref_retire", "retirement, GridProof / reference", None),
)


@dataclass
class Pool:
    """Fresh bundles to spend, one per write request, in order; `hours` their periods."""

    ids: list[int] = field(default_factory=list)
    hours: list[dt.datetime] = field(default_factory=list)
    used: int = 0

    def left(self) -> int:
        return len(self.ids) - self.used

    def id(self, i: int) -> int:
        """The i-th fresh bundle (a run sends at most `left()` requests)."""
        return self.ids[i]


class Registry:
    """A side of the comparison: `pools` of fresh bundles per write kind, made by `_bundles`."""

    pools: dict[str, Pool]

    def _bundles(self, n: int) -> Pool:
        raise NotImplementedError

    def top_up(self, kind: str, need: int) -> None:
        pool = self.pools[kind]
        if pool.left() < need:
            more = self._bundles(need)
            pool.ids += more.ids
            pool.hours += more.hours


# ---------------------------------------------------------------- GridProof's side


class GridProof(Registry):
    """A world in the benchmark's database: a producer with read bundles and fresh ones to
    transfer and retire, a buyer's account, an API token of the producer's operator."""

    def __init__(self, n_read: int) -> None:
        from django.db import transaction

        from accounts.models import Account, Membership, User
        from accounts.services import api_token_create

        self.tag = f"r{int(time.time())}"
        self.batches = 0
        with transaction.atomic():
            orgs = support.bench_organisations(self.tag, ("producer", "buyer"), "REF")
            self.accounts = [
                Account.objects.create(organisation=o, number=f"REF-{self.tag}-{i}", name="T")
                for i, o in enumerate(orgs)
            ]
            self.user = User.objects.create(username=f"ref-{self.tag}")
            Membership.objects.create(
                user=self.user, organisation=orgs[0], role=Membership.Role.OPERATOR
            )
            _token, plaintext = api_token_create(user=self.user, name="bench")
        self.org = orgs[0]
        self.auth = {"Authorization": f"Bearer {plaintext}"}
        self.read_ids = self._bundles(n_read).ids
        self.pools = {"gp_transfer": Pool(), "gp_retire": Pool()}

    def _bundles(self, n: int) -> Pool:
        from django.db import transaction

        self.batches += 1
        start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + self.batches * 100_000 * HOUR
        with transaction.atomic():
            _device, bundles = support.bench_issued_bundles(
                self.org, self.accounts[0], f"{self.tag}-{self.batches}", n, start
            )
        return Pool([b.pk for b in bundles], [b.period_start for b in bundles])

    def request(self, kind: str, rng: random.Random):
        if kind == "gp_read":
            return lambda n: (
                "GET",
                f"/api/v1/bundles/{rng.choice(self.read_ids)}/",
                None,
                self.auth,
            )
        if kind == "gp_read_anon":  # the bundle page is public; the reference has no auth
            return lambda n: ("GET", f"/api/v1/bundles/{rng.choice(self.read_ids)}/", None, {})
        if kind == "bare":
            return lambda n: ("GET", "/bench/read/", None, self.auth)
        if kind == "django_bare":
            return lambda n: ("GET", "/bench/django-read/", None, self.auth)
        pool, first = self.pools[kind], self.pools[kind].used
        headers = self.auth | JSON
        if kind == "gp_transfer":
            body = json.dumps({"to_account": self.accounts[1].number, "volume_wh": 1}).encode()
            return lambda n: (
                "POST",
                f"/api/v1/bundles/{pool.id(first + n)}/transfers/",
                body,
                headers,
            )

        def retire(n: int):
            hour = pool.hours[min(first + n, len(pool.hours) - 1)]
            claim = {
                "beneficiary_name": "Bench beneficiary",
                "beneficiary_country": "DE",
                "consumption_start": hour.isoformat(),
                "consumption_end": (hour + HOUR).isoformat(),
                "purpose": "disclosure",
            }
            path = f"/api/v1/bundles/{pool.id(first + n)}/retirements/"
            return ("POST", path, json.dumps(claim).encode(), headers)

        return retire

    def stored(self) -> dict[str, int]:
        from certificates.models import Retirement, Transfer

        return {
            "gp_transfer": Transfer.objects.filter(from_account=self.accounts[0]).count(),
            "gp_retire": Retirement.objects.filter(account=self.accounts[0]).count(),
        }


# ---------------------------------------------------------------- the reference's side


class Reference(Registry):
    """A world made through the reference registry's own API at `url`: two accounts (the
    source whitelisted by the target), a device, issuance metadata and bundles."""

    def __init__(self, url: str, user_id: int, n_read: int, tag: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.prefix = parsed.path.rstrip("/")
        self.user = user_id
        source = {"account_name": f"src {tag}", "user_ids": [user_id]}
        self.source = self._post("/account/create", source)["id"]
        target = source | {"account_name": f"dst {tag}", "account_whitelist": [self.source]}
        self.target = self._post("/account/create", target)["id"]
        device = {
            "device_name": f"Bench PV {tag}", "meter_data_id": f"B-{tag}", "grid": "Bench",
            "energy_source": "solar_pv", "technology_type": "solar_pv",
            "operational_date": "2020-01-01T00:00:00", "capacity": 10**9, "peak_demand": 0,
            "location": "loopback", "account_id": self.source, "is_storage": False,
        }  # fmt: skip
        self.device = self._post("/device/create", device)["id"]
        metadata = {
            "country_of_issuance": "DE", "connected_grid_identification": "Bench",
            "issuing_body": "Bench", "legal_status": "legal", "issuance_purpose": "compliance",
            "issue_market_zone": "Bench",
        }  # fmt: skip
        self.metadata = self._post("/certificate/create_metadata", metadata)["id"]
        self.next_hour = dt.datetime(2025, 1, 1)
        self.read = self._bundles(n_read)
        self.pools = {"ref_transfer": Pool(), "ref_retire": Pool()}

    def _post(self, path: str, body: dict) -> dict:
        import http.client

        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        conn.request("POST", self.prefix + path, body=json.dumps(body).encode(), headers=JSON)
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        if response.status >= 300:
            raise SystemExit(f"reference {path}: {response.status} {payload[:300]!r}")
        return json.loads(payload)

    def _bundles(self, n: int) -> Pool:
        """n bundles of 1,000 Wh, one hour each, through `POST /certificate/create` (setup,
        4 at a time)."""
        from concurrent.futures import ThreadPoolExecutor

        hours = [self.next_hour + i * HOUR for i in range(n)]
        self.next_hour += n * HOUR

        def create(hour: dt.datetime) -> int:
            bundle = {
                "issuance_id": "set by the registry", "certificate_bundle_status": "Active",
                "account_id": self.source, "metadata_id": self.metadata,
                "certificate_bundle_id_range_start": 1, "certificate_bundle_id_range_end": 1000,
                "bundle_quantity": 1000, "energy_carrier": "electricity",
                "energy_source": "solar_pv", "face_value": 1,
                "issuance_post_energy_carrier_conversion": False, "device_id": self.device,
                "production_starting_interval": hour.isoformat(),
                "production_ending_interval": (hour + HOUR - dt.timedelta(seconds=1)).isoformat(),
                "expiry_datestamp": (hour + 365 * 24 * HOUR).isoformat(), "is_storage": False,
            }  # fmt: skip
            return self._post("/certificate/create", bundle)["id"]

        with ThreadPoolExecutor(4) as executor:
            return Pool(list(executor.map(create, hours)), hours)

    def request(self, kind: str, rng: random.Random):
        p = self.prefix
        if kind == "ref_read":

            def read(n: int):
                hour = rng.choice(self.read.hours)
                query = {
                    "source_id": self.source, "user_id": self.user, "device_id": self.device,
                    "certificate_period_start": hour.isoformat(),
                    "certificate_period_end": (hour + HOUR - dt.timedelta(seconds=1)).isoformat(),
                }  # fmt: skip
                return ("POST", f"{p}/certificate/query", json.dumps(query).encode(), JSON)

            return read
        if kind == "ref_bare":
            return lambda n: ("GET", f"{p}/account/{self.source}", None, {})
        pool, first = self.pools[kind], self.pools[kind].used
        action = {"source_id": self.source, "user_id": self.user}
        if kind == "ref_transfer":
            action |= {"target_id": self.target, "certificate_quantity": 1}
            path = f"{p}/certificate/transfer"
        else:
            action |= {"beneficiary": "Bench beneficiary"}
            path = f"{p}/certificate/cancel"

        def write(n: int):
            body = action | {"granular_certificate_bundle_ids": [pool.id(first + n)]}
            return ("POST", path, json.dumps(body).encode(), JSON)

        return write

    def check_read(self) -> None:
        """The narrowed query answers exactly one bundle (else the read is not comparable)."""
        _method, path, body, _ = self.request("ref_read", random.Random(0))(0)
        found = self._post(path.removeprefix(self.prefix), json.loads(body))
        if (n := len(found["granular_certificate_bundles"])) != 1:
            raise SystemExit(f"the reference's one-bundle query found {n} bundles")

    def stored(self) -> dict[str, int]:
        """Bundles that reached the target account; cancelled bundles of the source."""

        def count(**query) -> int:
            import http.client

            conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            body = json.dumps({"user_id": self.user} | query).encode()
            conn.request("POST", f"{self.prefix}/certificate/query", body=body, headers=JSON)
            response = conn.getresponse()
            payload = json.loads(response.read())
            conn.close()  # it answers 422 "No certificates found" for none
            return len(payload.get("granular_certificate_bundles", []))

        return {
            "ref_transfer": count(source_id=self.target),
            "ref_retire": count(source_id=self.source, certificate_bundle_status="Cancelled"),
        }


# ---------------------------------------------------------------- rounds


def gridproof_django() -> None:
    """Django on the benchmark's database, migrated, throttles out of the way."""
    ensure_database()
    for scope in ("ANON", "USER", "LOGIN", "LEDGER"):  # throttled as in production, never hit
        os.environ[f"THROTTLE_{scope}"] = "100000000/minute"
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if not os.environ.get("CELERY_BROKER_URL"):
        print("no CELERY_BROKER_URL: each GridProof write integrates the ledger in the request")


def run_rounds(gp, refs: dict, workers: int, args) -> dict[str, list[http_support.Run]]:
    """Alternate the kinds for `args.rounds` rounds on GridProof with `workers` workers
    and, when given, the reference at refs[workers]."""
    ref = refs.get(workers)
    kinds = [k for k, _ in KINDS if ref is not None or not k.startswith("ref_")]
    kinds = [k for k in kinds if not args.kinds or k in args.kinds]
    runs: dict[str, list[http_support.Run]] = {k: [] for k in kinds}
    rates: dict[str, float] = {}
    rng = random.Random(workers)
    with http_support.serve(
        workers=workers, worker_class=args.worker_class, server=args.server
    ) as gp_port:
        for side in (gp, ref):  # warm every worker (imports, connections) before the clock
            if side is None:
                continue
            for kind in ("gp_read", "bare") if side is gp else ("ref_read", "ref_bare"):
                port = gp_port if side is gp else ref.port
                host = "127.0.0.1" if side is gp else ref.host
                http_support.closed_loop(
                    port, side.request(kind, rng), workers * 2, min(args.seconds, 1),
                    fresh_connections=True, host=host,
                )  # fmt: skip
        print(f"\n== {workers} worker(s); load average before: {load()} ==", flush=True)
        for round_ in range(args.rounds):
            line = []
            for kind in kinds:
                side = ref if kind.startswith("ref_") else gp
                if kind in side.pools:  # fresh bundles: twice what the last round used
                    need = 2 * rates.get(kind, args.min_rate) * args.seconds
                    side.top_up(kind, max(args.min_pool, int(need)))
                port, host = (gp_port, "127.0.0.1") if side is gp else (ref.port, ref.host)
                pool = side.pools.get(kind)
                cpu = http_support.server_cpu_seconds(gp_port) if side is gp else None
                run = http_support.closed_loop(
                    port, side.request(kind, rng), args.clients, args.seconds,
                    fresh_connections=True, host=host,
                    limit=None if pool is None else pool.left(),
                )  # fmt: skip
                if cpu is not None:
                    run.server_cpu = http_support.server_cpu_seconds(gp_port) - cpu
                if pool is not None:
                    pool.used += len(run.latencies) + run.failed
                    time.sleep(0.5)  # requests in flight when the clock stopped finish
                runs[kind].append(run)
                rates[kind] = run.rate
                bad = f" ({run.failed} failed)" if run.failed else ""
                if run.seconds < args.seconds * 0.9:  # every fresh bundle spent early
                    bad += f" (pool spent in {run.seconds:.1f} s)"
                line.append(f"{kind} {run.rate:.0f}{bad}")
            print(f"  round {round_ + 1}: " + ", ".join(line) + " req/s", flush=True)
        print(f"  load average after: {load()}")
    return runs


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def report(workers: int, runs: dict[str, list[http_support.Run]]) -> None:
    print(f"\n{workers} worker(s), median req/s of the rounds, latency over all rounds (ms):")
    rate = {}
    for kind, label in KINDS:
        if kind not in runs:
            continue
        rate[kind] = statistics.median(r.rate for r in runs[kind])
        every = http_support.Run(0, 1, [x for r in runs[kind] for x in r.latencies], 0)
        failed = sum(r.failed for r in runs[kind])
        cpu = [r.cpu_ms_per_request for r in runs[kind] if r.cpu_ms_per_request is not None]
        print(
            f"  {label:46}{rate[kind]:8.1f} req/s  p50 {every.p50:7.2f}  p99 {every.p99:7.2f}"
            + (f"  server CPU {statistics.median(cpu):5.2f} ms/req" if cpu else "")
            + (f"  {failed} FAILED" if failed else "")
        )
    for top, bottom, label, aim in RATIOS:
        if top in rate and bottom in rate:
            ratio = rate[top] / rate[bottom]
            met = "met" if aim is not None and ratio >= aim else "MISSED"
            goal = "" if aim is None else f" (aim >= {aim:g}x: {met})"
            print(f"  {label:46}{ratio:8.2f}x{goal}")


def parse_urls(values: list[str]) -> dict[int | None, str]:
    urls: dict[int | None, str] = {}
    for value in values:
        count, sep, url = value.partition("=")
        urls[int(count) if sep else None] = url if sep else value
    return urls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--reference-url",
        action="append",
        default=[],
        metavar="[WORKERS=]URL",
        help="the reference registry's base URL on loopback, per worker count (repeat)",
    )
    parser.add_argument("--reference-user", type=int, help="a user id in the reference registry")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=5.0, help="per kind and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4, help="closed-loop clients")
    parser.add_argument(
        "--worker-class",
        choices=["sync", "gthread"],
        default="gthread",
        help="with --server gunicorn: its workers, sync or gthread (4 threads each)",
    )
    parser.add_argument(
        "--server",
        choices=["gunicorn", "granian"],
        default="granian",
        help="GridProof's HTTP server: granian's WSGI interface with 4 blocking threads a "
        "worker (production), or gunicorn, which it replaced (a development requirement)",
    )
    parser.add_argument("--bundles", type=int, default=1000, help="bundles read, per registry")
    parser.add_argument("--min-pool", type=int, default=300, help="fresh bundles per write run")
    parser.add_argument(
        "--min-rate", type=float, default=100, help="writes/s to make bundles for, first round"
    )
    parser.add_argument(
        "--kinds",
        nargs="+",
        choices=[k for k, _ in KINDS],
        help="only these kinds (e.g. one, to profile the server with py-spy)",
    )
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    apply_smoke(
        args, workers=[1], seconds=0.5, rounds=1, clients=2, bundles=20, min_pool=40, min_rate=40
    )
    urls = parse_urls(args.reference_url)
    if args.smoke and urls:
        parser.error("--smoke runs GridProof's side only: leave out --reference-url")
    if urls and args.reference_user is None:
        parser.error("--reference-user is needed with --reference-url")
    for url in urls.values():
        if urllib.parse.urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
            parser.error(f"{url}: the benchmark sends load to loopback addresses only")

    gridproof_django()
    gp = GridProof(args.bundles)
    refs = {}
    for workers in args.workers:
        url = urls.get(workers) or urls.get(None)
        if url:
            refs[workers] = Reference(url, args.reference_user, args.bundles, f"{gp.tag}-{workers}")
            refs[workers].check_read()
    print(
        f"{os.cpu_count()} CPUs; {args.clients} clients, a new connection per request; "
        + (
            f"GridProof on gunicorn {args.worker_class} workers"
            if args.server == "gunicorn"
            else "GridProof on granian (WSGI, 4 blocking threads a worker)"
        )
    )
    results = {w: run_rounds(gp, refs, w, args) for w in args.workers}
    for workers, runs in results.items():
        report(workers, runs)
    answered = {k: 0 for k in ("gp_transfer", "gp_retire", "ref_transfer", "ref_retire")}
    for runs in results.values():
        for kind in answered:
            answered[kind] += sum(len(r.latencies) for r in runs.get(kind, []))
    stored = gp.stored()
    for ref in refs.values():
        for kind, n in ref.stored().items():
            stored[kind] = stored.get(kind, 0) + n
    counts = ", ".join(f"{kind} {stored[kind]}/{answered[kind]}" for kind in stored)
    print(f"\nstored against 2xx answers: {counts}")
    if any(stored[k] < answered[k] for k in stored):
        raise SystemExit("a registry answered 2xx for writes it did not store")


if __name__ == "__main__":
    main()
