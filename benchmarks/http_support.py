"""The HTTP benchmarks' server and client: the app under Granian (production's web server)
or gunicorn on loopback, driven by
closed-loop clients (certificates_bench.py, market_http_bench.py,
reference_registry_bench.py).

The server runs `benchmarks.certificates_settings`: the registry plus `bench/read/`, a bare
DRF endpoint (same authentication and throttling, one primary-key read) as the baseline.
"""

import contextlib
import http.client
import itertools
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from support import REPO

_SERVERS: dict[int, int] = {}
"""port -> process group of the server `serve()` started there"""


def _group_cpu_seconds(group: int) -> float:
    """User + system CPU seconds of every live process in a process group (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == group:  # pgrp; then utime, stime are fields 11 and 12 here
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def server_cpu_seconds(port: int) -> float:
    """CPU seconds the server on `port` (started by `serve()`) has used so far: its
    master and workers. Per request, this is what the server costs the machine, steadier
    on a shared machine than a rate (other processes' load lengthens the wall clock, not
    the CPU a request takes)."""
    return _group_cpu_seconds(_SERVERS[port])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(
    port: int = 0,
    workers: int = 2,
    threads: int = 4,
    server: str = "granian",
    worker_class: str = "gthread",
) -> Iterator[int]:
    """Serve the app on 127.0.0.1:`port` (0: a free one) with `workers` processes of
    `threads` threads each, throttles lifted; yields the port. On exit the server is
    stopped and, with a broker, the ledger integrator tasks its commits queued are purged
    (no worker runs here to take them).

    server="granian" is production's web server (its WSGI interface, `threads` blocking
    threads a worker; docs/operations.md, "Worker model"). server="gunicorn" serves the
    same app under the server it replaced, for the comparison in benchmarks/README.md
    ("Worker model"): gthread workers, or with worker_class="sync" one request at a time
    per worker process."""
    port = port or free_port()
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "benchmarks.certificates_settings",
        "THROTTLE_USER": "100000000/minute",
        "THROTTLE_ANON": "100000000/minute",
        "LOG_LEVEL": "ERROR",  # refused requests are counted, not logged
        "PYTHONWARNINGS": "ignore",
    }
    if server == "granian":
        command = [
            str(Path(sys.executable).parent / "granian"),
            *("--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port)),
            *("--workers", str(workers), "--blocking-threads", str(threads)),
            *("--no-ws", "--log-level", "warning", "--no-access-log"),
            "registry.wsgi:application",
        ]
    elif server == "gunicorn":
        command = [
            str(Path(sys.executable).parent / "gunicorn"),
            "registry.wsgi:application",
            *("--bind", f"127.0.0.1:{port}", "--workers", str(workers)),
            *("--worker-class", worker_class, "--log-level", "warning", "--no-control-socket"),
            # gunicorn turns a sync worker with threads > 1 into gthread
            *(("--threads", str(threads)) if worker_class == "gthread" else ()),
        ]
    else:
        raise ValueError(f"unknown server {server!r}")
    process = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True)
    _SERVERS[port] = process.pid
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        _SERVERS.pop(port, None)
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        if os.environ.get("CELERY_BROKER_URL"):
            from registry.celery import app

            app.control.purge()


@dataclass
class Run:
    """What a closed-loop run measured: completed requests, their rate and latencies."""

    concurrency: int
    seconds: float
    latencies: list[float]
    failed: int
    server_cpu: float | None = None
    """CPU seconds the server used over the run, when measured (`server_cpu_seconds`)"""

    @property
    def cpu_ms_per_request(self) -> float | None:
        answered = len(self.latencies) + self.failed
        if self.server_cpu is None or not answered:
            return None
        return self.server_cpu * 1000 / answered

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def quantile(self, q: float) -> float:
        """Latency quantile in ms (q in 0..1), from the completed requests."""
        if len(self.latencies) < 2:
            return self.latencies[0] * 1000 if self.latencies else float("nan")
        cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
        return cuts[round(q * 100) - 1] * 1000

    @property
    def p50(self) -> float:
        return self.quantile(0.50)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)

    def __str__(self) -> str:
        bad = f"; {self.failed} FAILED" if self.failed else ""
        return (
            f"{self.rate:7.1f} req/s  p50 {self.p50:7.2f} ms  p99 {self.p99:7.2f} ms  "
            f"({len(self.latencies)} requests{bad})"
        )


Request = tuple[str, str, bytes | None, dict[str, str]]
"""method, path, body, headers"""


def ok(status: int, _body: bytes) -> bool:
    """closed_loop's default check: any 2xx."""
    return 200 <= status < 300


def closed_loop(
    port: int,
    request: Callable[[int], Request],
    concurrency: int,
    seconds: float,
    check: Callable[[int, bytes], bool] = ok,
    fresh_connections: bool = False,
    host: str = "127.0.0.1",
    limit: int | None = None,
) -> Run:
    """`concurrency` clients (threads, one keep-alive connection each), each sending its
    next request as soon as the last one is answered, for `seconds`. `request(n)` builds
    the n-th request of the run (n unique across clients); a response is counted as
    completed only if `check(status, body)`; the others are counted as failed.

    With `fresh_connections` every request opens its own connection (and says
    `Connection: close`); its latency then includes the TCP connect. `host`: another
    loopback server (another registry on this machine). `limit`: send at most that many
    requests (n < limit; a write that needs a fresh bundle each time); a run that reaches
    it ends early, and its rate is over the time until its last answer."""
    numbers = itertools.count()
    go = threading.Event()
    lock = threading.Lock()
    latencies: list[float] = []
    failed = [0]
    deadline = [0.0]

    def client() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        mine, bad = [], 0
        go.wait()
        while time.perf_counter() < deadline[0]:
            n = next(numbers)
            if limit is not None and n >= limit:
                break
            method, path, body, headers = request(n)
            if fresh_connections:
                headers = headers | {"Connection": "close"}
            started = time.perf_counter()
            if fresh_connections:
                conn = http.client.HTTPConnection(host, port, timeout=30)
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            if fresh_connections:
                conn.close()
            elapsed = time.perf_counter() - started
            if check(response.status, payload):
                mine.append(elapsed)
            else:
                bad += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            failed[0] += bad

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    deadline[0] = started + seconds
    go.set()
    for thread in threads:
        thread.join()
    return Run(concurrency, time.perf_counter() - started, latencies, failed[0])
