"""The simulated clock and a real HTTP server of the registry on a loopback port.

Slots must be open when the agents order, closed when they clear and over when their
readings arrive and they settle: a day cannot pass in a few seconds of real time, so the
simulation sets Django's clock (`django.utils.timezone.now`, which every service and view
reads) to the simulated moment while it runs. The in-process server shares that clock;
nothing else of the process runs meanwhile. Rows stamped by a database default keep the
real time; services' times and ledger events carry the simulated ones.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.db import connections
from django.utils import timezone


class SimulatedClock:
    """`timezone.now()` answers `self.now` while the clock is installed."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def set(self, moment: dt.datetime) -> None:
        self.now = moment

    @contextmanager
    def installed(self) -> Iterator[SimulatedClock]:
        real = timezone.now
        timezone.now = lambda: self.now
        try:
            yield self
        finally:
            timezone.now = real


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args) -> None:
        pass


def _application():
    from django.core.wsgi import get_wsgi_application

    app = get_wsgi_application()

    def wrapped(environ, start_response):
        try:
            return app(environ, start_response)
        finally:
            connections.close_all()  # the server thread's connections, after each request

    return wrapped


@contextmanager
def local_server() -> Iterator[str]:
    """Serve the registry on a free loopback port in a thread; yield its base URL."""
    server: WSGIServer = make_server("127.0.0.1", 0, _application(), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class ApiError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: dict) -> None:
        super().__init__(f"{method} {path}: HTTP {status} {json.dumps(body)[:500]}")
        self.status = status
        self.body = body


class Api:
    """JSON over HTTP with a bearer token (urllib; POSTs carry an Idempotency-Key)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base = base_url.rstrip("/") + "/api/v1"
        self.token = token

    def call(self, method: str, path: str, body=None) -> dict:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if method == "POST":
            headers["Idempotency-Key"] = f"simulate-{uuid.uuid4().hex}"
        request = urllib.request.Request(  # noqa: S310 - a loopback or operator-given URL
            self.base + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                decoded = json.loads(raw)
            except ValueError:
                decoded = {"detail": raw.decode(errors="replace")[:500]}
            raise ApiError(method, path, exc.code, decoded) from None

    def get(self, path: str) -> dict:
        return self.call("GET", path)

    def post(self, path: str, body=None) -> dict:
        return self.call("POST", path, body if body is not None else {})
