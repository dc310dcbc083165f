"""Fixtures of the notifications suites: the certificates plant and the assets meter, a
helper that integrates the ledger and derives notifications, and a local webhook receiver."""

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from notifications.services import notifications_derive_pending
from tests.assets.conftest import device, grid_area, issuer, key, meter, producer, producer_org
from tests.certificates.conftest import ib_user, issued, plant
from tests.ledger.factories import integrate_all

__all__ = [
    "device",
    "grid_area",
    "ib_user",
    "issued",
    "issuer",
    "key",
    "meter",
    "plant",
    "producer",
    "producer_org",
]


def derive() -> int:
    """Integrate what the services queued, then derive notifications from it."""
    integrate_all()
    return notifications_derive_pending()


@dataclass
class Receiver:
    """A local HTTP server that records every POST and answers with the scripted statuses."""

    url: str
    statuses: list[int] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)

    def answer(self) -> int:
        return self.statuses.pop(0) if self.statuses else 200


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    state: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            recorder = state["receiver"]
            recorder.requests.append({"path": self.path, "headers": self.headers, "body": body})
            status = recorder.answer()
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", f"{recorder.url}elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["receiver"] = Receiver(url=f"http://127.0.0.1:{server.server_port}/hook/")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["receiver"]
    finally:
        server.shutdown()
        server.server_close()


def event_of(body: bytes) -> dict:
    return json.loads(body)
