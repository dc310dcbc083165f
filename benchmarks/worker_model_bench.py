"""Which server and worker model the web process runs in production, measured (issue 16).

    DJANGO_ENV=development CELERY_BROKER_URL=redis://127.0.0.1:6379/4 \\
        DATABASE_URL=postgres://postgres@127.0.0.1:5432/gp_bench_workers \\
        .venv/bin/python benchmarks/worker_model_bench.py [--workers 2 3] \\
        [--models gthread:4 granian:4] [--clients 1 4 8] [--seconds 3] [--rounds 2] \\
        [--kinds gp_read gp_read_anon bare django_bare gp_transfer gp_retire] [--smoke]

GridProof's side of benchmarks/reference_registry_bench.py (the same world, the same
requests, every request on a new connection), served on loopback in each model: gunicorn's
`sync` workers (one request at a time per process) or `gthread:N` (N threads per process),
or Granian's WSGI interface, `granian:N` (N blocking threads per process; production), at
each `--workers` count, from each number of closed-loop `--clients`:

- `GET /api/v1/bundles/{id}/` of a random bundle, with a Bearer token and anonymously;
- the bare DRF read (`/bench/read/`: same authentication and throttling, one primary-key
  read);
- a transfer of 1 Wh split off a fresh bundle (one transaction with its ledger event; with
  CELERY_BROKER_URL the commit kicks the integrator as in production);
- a retirement of a whole fresh bundle for a beneficiary (likewise, with its claim).

Every model's server runs at once (one worker count at a time); each cell (clients, kind)
runs on one model after the other, seconds apart, the first model rotating each round,
so the models see the same moment of the shared machine's load.
Printed per cell: req/s (median of the rounds), p50/p99 in ms (all rounds), the server's
CPU per request (its processes' CPU time over the run, median of the rounds: steadier than
a rate on a shared machine) and the mean one-minute load average sampled after each of its
runs.
"""

import argparse
import contextlib
import os
import random
import statistics
import time
from collections import defaultdict

import http_support
from reference_registry_bench import GridProof, gridproof_django
from support import SMOKE_HELP, apply_smoke

KINDS = {
    "gp_read": "bundle read (token)",
    "gp_read_anon": "bundle read (anonymous)",
    "bare": "bare DRF read",
    "django_bare": "bare Django read (no DRF)",
    "gp_transfer": "transfer (split 1 Wh)",
    "gp_retire": "retirement (whole bundle)",
}


SERVERS = {
    "sync": {"server": "gunicorn", "worker_class": "sync"},
    "gthread": {"server": "gunicorn", "worker_class": "gthread"},
    "granian": {"server": "granian"},
}
"""How each model is served: http_support.serve()'s arguments."""


def parse_model(value: str) -> tuple[str, int]:
    """`sync`, `gthread:N` or `granian:N` -> (model, threads)."""
    worker_class, _, threads = value.partition(":")
    if worker_class == "sync" and not threads:
        return "sync", 1
    if worker_class in ("gthread", "granian") and threads.isdigit() and int(threads) > 0:
        return worker_class, int(threads)
    raise argparse.ArgumentTypeError(f"{value}: sync, gthread:N or granian:N")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--models", type=parse_model, nargs="+", default=["gthread:4", "granian:4"])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--seconds", type=float, default=3.0, help="per cell and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS))
    parser.add_argument("--bundles", type=int, default=1000, help="bundles read")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    args.models = [parse_model(m) if isinstance(m, str) else m for m in args.models]
    apply_smoke(args, workers=[1], clients=[2], seconds=0.5, rounds=1, bundles=20)

    gridproof_django()
    gp = GridProof(args.bundles)
    print(f"{os.cpu_count()} CPUs; a new connection per request; load before: {load()}")
    cells: dict[tuple, list[http_support.Run]] = defaultdict(list)
    loads: dict[tuple, list[float]] = defaultdict(list)
    rates: dict[str, float] = {}  # the fastest rate seen a kind, to size the bundle pools
    rng = random.Random(1)
    models = [model_name(*m) for m in args.models]
    for workers in args.workers:
        with contextlib.ExitStack() as servers:
            ports = {}
            for (worker_class, threads), model in zip(args.models, models, strict=True):
                ports[model] = servers.enter_context(
                    http_support.serve(
                        workers=workers,
                        threads=threads,
                        **SERVERS[worker_class],
                    )
                )
                threads_total = workers * threads
                for kind in ("gp_read", "bare"):  # warm every worker and thread
                    http_support.closed_loop(
                        ports[model], gp.request(kind, rng), threads_total * 2,
                        min(args.seconds, 1), fresh_connections=True,
                    )  # fmt: skip
            for round_ in range(args.rounds):
                order = models[round_ % len(models) :] + models[: round_ % len(models)]
                for clients in args.clients:
                    for kind in args.kinds:
                        line = []
                        for model in order:  # the models one after another, seconds apart
                            if kind in gp.pools:  # fresh bundles: twice the fastest rate yet
                                fastest = max(rates.get(kind, 0), 500)
                                gp.top_up(kind, int(2 * fastest * args.seconds))
                            cpu = http_support.server_cpu_seconds(ports[model])
                            run = http_support.closed_loop(
                                ports[model], gp.request(kind, rng), clients, args.seconds,
                                fresh_connections=True,
                            )  # fmt: skip
                            run.server_cpu = http_support.server_cpu_seconds(ports[model]) - cpu
                            if kind in gp.pools:
                                gp.pools[kind].used += len(run.latencies) + run.failed
                                time.sleep(0.3)  # in-flight requests finish
                            rates[kind] = max(rates.get(kind, 0), run.rate)
                            key = (workers, model, clients, kind)
                            cells[key].append(run)
                            loads[key].append(os.getloadavg()[0])
                            line.append(f"{model} {run.rate:.0f}")
                        print(
                            f"round {round_ + 1} {workers}w {clients}c {kind}: " + ", ".join(line),
                            flush=True,
                        )
    report(args, cells, loads)
    stored = gp.stored()
    for write in (k for k in args.kinds if k in gp.pools):
        answered = sum(len(r.latencies) for k, runs in cells.items() if k[3] == write for r in runs)
        print(f"\n{KINDS[write]}: stored against 2xx answers: {stored[write]}/{answered}")
        if stored[write] < answered:
            raise SystemExit(f"the registry answered 2xx for {write} it did not store")


def model_name(worker_class: str, threads: int) -> str:
    return "sync" if worker_class == "sync" else f"{worker_class} x{threads}"


def report(args, cells: dict, loads: dict) -> None:
    """One Markdown table: a row per cell, the models of a cell together."""
    print(f"\n{args.rounds} rounds x {args.seconds:g} s; req/s median of the rounds")
    print("| workers | model | clients | request | req/s | p50 ms | p99 ms | CPU ms/req | load |")
    print("| ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for key in sorted(cells, key=lambda k: (k[0], k[2], list(KINDS).index(k[3]))):
        workers, model, clients, kind = key
        runs = cells[key]
        rate = statistics.median(r.rate for r in runs)
        every = http_support.Run(0, 1, [x for r in runs for x in r.latencies], 0)
        failed = sum(r.failed for r in runs)
        bad = f" ({failed} failed)" if failed else ""
        load_ = statistics.mean(loads[key])
        cpus = [r.cpu_ms_per_request for r in runs if r.cpu_ms_per_request is not None]
        cpu = f"{statistics.median(cpus):.2f}" if cpus else "-"  # no request answered
        print(
            f"| {workers} | {model} | {clients} | {KINDS[kind]} | {rate:.1f}{bad} | "
            f"{every.p50:.1f} | {every.p99:.1f} | {cpu} | {load_:.1f} |"
        )


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
