"""Fuzz the running API against its own OpenAPI schema with schemathesis, once per role.

    .venv/bin/python scripts/fuzz_api.py [--database-url postgres://…/gridproof_fuzz]
        [--port 8719] [--max-examples 5] [--seed 1] [--roles anonymous,auditor,…] [--threads 4]

A throw-away registry: the database (PostgreSQL when --database-url is given, else a
temporary SQLite file) is created, migrated and seeded with the demo data, and dropped at
the end, because fuzzing as a producer or as the issuing body really decommissions
devices, closes accounts and rejects batches. The app runs under Granian (2 workers of
`--threads` blocking threads, production's web server and worker model) with throttling
lifted; each role gets an API token from `manage.py api_token_create`.

Fails (exit 1) on any server error (5xx), any response that violates the schema, any
status code the schema does not document, any response of an undocumented content type,
any request the schema calls valid that the server refuses (ST202) and any request the
schema calls invalid that the server accepts (ST201). The few refusals no schema can
express (one field compared with another, ids the registry does not have, a check digit)
are listed, operation by operation and error code by error code, in scripts/fuzz_rules.py.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# demo username per role; anonymous sends no token
ROLES = {
    "anonymous": None,
    "auditor": "auditor",
    "buyer": "buyer",
    "producer_admin": "producer",
    "issuing_body": "admin",
}
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "response_schema_conformance",
    "content_type_conformance",
    # ST201: a schema-violating request accepted
    "negative_data_rejection",
    # ST202: a schema-valid request rejected; schemathesis's positive_data_acceptance but for
    # the rules the schema cannot state (scripts/fuzz_rules.py, loaded as the hooks file)
    "positive_data_acceptance_beyond_schema",
]
RULES = REPO / "scripts" / "fuzz_rules.py"
CONFIG = REPO / "scripts" / "schemathesis.toml"  # the checks' expected statuses


# Prints whether the role the server will run as could rewrite the ledger.
PROTECTION_CHECK = "from registry.db_roles import ledger_protection_summary as s; print(s())"


def run(cmd: list[str], env: dict, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, env=env, check=True, **kwargs)  # noqa: S603 - fixed argv


def postgres_admin(url: str, *statements: str) -> None:
    import psycopg2

    parsed = urlparse(url)
    conn = psycopg2.connect(
        host=parsed.hostname, port=parsed.port or 5432, user=parsed.username, dbname="postgres"
    )
    conn.autocommit = True
    with conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    conn.close()


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not come up")


def _findings(result: dict) -> int:
    """Failing-check counts of one role's run."""
    return sum(result["counts"].values())


# schemathesis's text report: the failures follow a `==== FAILURES ====` line.
_FAILURES = re.compile(r"^=+ FAILURES =+$", re.MULTILINE)


def _failures(text: str) -> str:
    """The report's failure blocks, without the run's preamble."""
    match = _FAILURES.search(text)
    return text[match.start() :] if match else text


def fuzz_role(role: str, token: str | None, args, base: str, reports: Path, work: Path) -> dict:
    report = reports / f"{role}.json"
    cmd = [
        str(BIN / "st"),
        "--config-file",
        str(CONFIG),
        "run",
        str(work / "schema.json"),
        "--url",
        base,
        "--seed",
        str(args.seed),
        "--max-examples",
        str(args.max_examples),
        "--workers",
        str(args.workers),
        "--phases",
        args.phases,
        "--checks",
        ",".join(CHECKS),
        "--suppress-health-check",
        "all",
        "--no-shrink",
        "--request-timeout",
        "30",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    if token:
        cmd += ["--header", f"Authorization: Bearer {token}"]
    started = time.monotonic()
    with open(reports / f"{role}.txt", "w") as output:
        # schemathesis keeps a cache of past failures (.schemathesis/) in its working
        # directory and replays them; a fresh one per run keeps the run a function of the seed.
        subprocess.run(  # noqa: S603 - fixed argv
            cmd,
            cwd=work,
            env=os.environ | {"SCHEMATHESIS_HOOKS": str(RULES)},
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
        )
    elapsed = time.monotonic() - started
    try:
        data = json.loads(report.read_text())
        data["operations"]["tested"]
    except (OSError, ValueError, KeyError, TypeError):
        # schemathesis itself failed (schema not loaded, crash): one error, see its output
        data = {"failures": [], "errors": [None], "test_cases": {}, "operations": {}}
    counts = {f["code"]: f["count"] for f in data["failures"]}
    return {
        "role": role,
        "seconds": elapsed,
        "cases": data["test_cases"].get("generated", 0),
        "operations": data["operations"].get("tested", 0),
        "errors": len(data["errors"]),
        "counts": counts,
        "titles": {f["code"]: f["title"] for f in data["failures"]},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="")
    parser.add_argument("--port", type=int, default=8719)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-examples", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="schemathesis's concurrent clients")
    parser.add_argument(
        "--threads", type=int, default=4, help="threads per web server worker (production: 4)"
    )
    # The coverage phase (every boundary value of every parameter) is thorough but takes
    # ~85% of a run; add it with --phases examples,coverage,fuzzing,stateful.
    parser.add_argument("--phases", default="examples,fuzzing,stateful")
    parser.add_argument("--roles", default=",".join(ROLES))
    parser.add_argument("--reports", default="", help="keep the reports in this directory")
    parser.add_argument(
        "--app-role",
        default="",
        help="PostgreSQL: migrate as the URL's user, then seed and serve as this role "
        "(created if missing), which cannot rewrite the ledger (DATABASE_APP_ROLE)",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gridproof-fuzz-"))
    reports = Path(args.reports) if args.reports else work / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env |= {
        "DJANGO_ENV": "development",
        "SQLITE_PATH": str(work / "db.sqlite3"),
        "REGISTRY_SIGNING_KEY_FILE": str(work / "signing.key"),
        "THROTTLE_ANON": "1000000/minute",
        "THROTTLE_USER": "1000000/minute",
        "THROTTLE_LOGIN": "1000000/minute",
        "THROTTLE_LEDGER": "1000000/minute",
        "LOG_LEVEL": "ERROR",
    }
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
        name = urlparse(args.database_url).path.lstrip("/")
        postgres_admin(
            args.database_url,
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f'CREATE DATABASE "{name}"',
        )
        if args.app_role:
            postgres_admin(
                args.database_url,
                "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
                f"'{args.app_role}') THEN CREATE ROLE \"{args.app_role}\" LOGIN; END IF; END $$",
            )
    server = None
    started = time.monotonic()
    try:
        py = str(BIN / "python")
        run(
            [py, "manage.py", "migrate", "--noinput", "-v0"],
            env | {"DATABASE_APP_ROLE": args.app_role},
        )
        if args.app_role:  # everything after the migrations runs as the application
            owner = urlparse(args.database_url)
            host = f"{owner.hostname}:{owner.port or 5432}"
            env["DATABASE_URL"] = owner._replace(netloc=f"{args.app_role}@{host}").geturl()
            protection = run(
                [py, "manage.py", "shell", "-v0", "-c", PROTECTION_CHECK],
                env,
                capture_output=True,
                text=True,
            ).stdout.strip()
            print(f"serving as {args.app_role}: ledger {protection}")
            if protection != "protected":
                return 1
        run([py, "manage.py", "seed_demo"], env, stdout=subprocess.DEVNULL)
        roles = [r for r in args.roles.split(",") if r]
        tokens = {}
        for role in roles:
            if ROLES[role]:
                out = run(
                    [py, "manage.py", "api_token_create", ROLES[role], "--name", "fuzz"],
                    env,
                    capture_output=True,
                    text=True,
                )
                tokens[role] = out.stdout.strip()
        base = f"http://127.0.0.1:{args.port}"
        with open(reports / "server.log", "wb") as server_log:  # the server keeps its copy
            server = subprocess.Popen(  # noqa: S603 - our own web server
                [
                    str(BIN / "granian"),
                    *("--interface", "wsgi", "--host", "127.0.0.1", "--port", str(args.port)),
                    # production's worker model (docs/operations.md, "Worker model"), so that the
                    # fuzzer's concurrent requests share a process's threads as they will there
                    *("--workers", "2", "--blocking-threads", str(args.threads), "--no-ws"),
                    "registry.wsgi:application",
                ],
                cwd=REPO,
                env=env,
                stdout=server_log,
                stderr=subprocess.STDOUT,
            )
        wait_for(f"{base}/healthz")
        # The schema is generated once and given to every run as a file (it is what the
        # running app serves at /api/schema/; generating it per role costs seconds each).
        with urllib.request.urlopen(f"{base}/api/schema/?format=json", timeout=300) as r:  # noqa: S310
            (work / "schema.json").write_bytes(r.read())
        results = []
        for role in roles:
            result = fuzz_role(role, tokens.get(role), args, base, reports, work)
            if result["errors"] and not _findings(result):
                # An error of the tool itself (a request that timed out on a loaded machine,
                # a generator crash) with no finding: run the role once more with the same
                # seed; a real problem shows again, a passing hiccup does not.
                print(f"{role}: {result['errors']} schemathesis error(s), no finding; once more")
                result = fuzz_role(role, tokens.get(role), args, base, reports, work)
            results.append(result)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if args.database_url:
            name = urlparse(args.database_url).path.lstrip("/")
            postgres_admin(args.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    titles = {code: t for r in results for code, t in r["titles"].items()}
    codes = sorted(titles)
    print(f"\nschemathesis, seed {args.seed}, {args.max_examples} examples per operation")
    print(f"{'role':<16}{'ops':>5}{'cases':>7}{'errors':>7}{'s':>6}  " + "  ".join(codes))
    bad = 0
    for r in results:
        cells = "  ".join(f"{r['counts'].get(code, 0):>{len(code)}}" for code in codes)
        print(
            f"{r['role']:<16}{r['operations']:>5}{r['cases']:>7}{r['errors']:>7}"
            f"{r['seconds']:>6.0f}  {cells}"
        )
        bad += r["errors"] + _findings(r)
    for code in codes:
        print(f"  {code}: {titles[code]}")
    print(f"total {time.monotonic() - started:.0f} s; reports in {reports}")
    if bad:
        for r in results:
            text = (reports / f"{r['role']}.txt").read_text(errors="replace")
            if r["errors"] or _findings(r):
                print(f"\n---- {r['role']} ----\n" + _failures(text)[:20000])
        print(f"fuzzing found {bad} failure(s)", file=sys.stderr)
    if not args.reports:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
