"""Outgoing HTTP to peers: bounded time, bounded size, no redirects, no Django.

Every call has a socket timeout, an overall deadline and a response size cap, so a slow
or hostile peer can hold a worker for a bounded time and memory only. Errors are
`PeerUnreachable` (network, timeout, oversized or cut-off response) or the status code
in `PeerResponse`; callers decide what a status means.
"""

from __future__ import annotations

import http.client
import ssl
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from registry.errors import JsonTooDeep
from registry.jsonlimits import json_loads_limited

USER_AGENT = "gridproof-federation/1"
_CHUNK = 256 * 1024


class PeerUnreachable(Exception):
    """The peer could not be reached, was too slow, or sent too much or too little."""


class PeerResponseInvalid(Exception):
    """The peer answered, but not in the shape the protocol requires."""


@dataclass(frozen=True)
class Limits:
    timeout: float = 5.0
    max_bytes: int = 32 * 1024 * 1024


@dataclass(frozen=True)
class PeerResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def text(self) -> str:
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise PeerResponseInvalid("response is not UTF-8 text") from None

    def json(self) -> Any:
        try:
            return json_loads_limited(self.body)
        except ValueError:
            raise PeerResponseInvalid("response is not JSON") from None
        except JsonTooDeep:
            raise PeerResponseInvalid("response JSON is nested too deeply") from None


def join(base: str, path: str) -> str:
    return base.rstrip("/") + path


def request(
    method: str,
    url: str,
    *,
    limits: Limits,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> PeerResponse:
    """One HTTP request; the whole response read within the limits."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PeerUnreachable(f"not an http(s) URL: {url!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    deadline = time.monotonic() + 2 * limits.timeout
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=limits.timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=limits.timeout)
    sent = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(headers or {})}
    try:
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        length = response.getheader("Content-Length", "")
        if length.isdigit() and int(length) > limits.max_bytes:
            raise PeerUnreachable(f"{url}: response of {length} bytes exceeds {limits.max_bytes}")
        chunks: list[bytes] = []
        total = 0
        while chunk := response.read(_CHUNK):
            total += len(chunk)
            if total > limits.max_bytes:
                raise PeerUnreachable(f"{url}: response exceeds {limits.max_bytes} bytes")
            if time.monotonic() > deadline:
                raise PeerUnreachable(f"{url}: response took longer than {2 * limits.timeout} s")
            chunks.append(chunk)
        # read(n) does not raise IncompleteRead when the peer closes early: check here.
        if length.isdigit() and total < int(length):
            raise PeerUnreachable(f"{url}: response cut off after {total} of {length} bytes")
        received = {k.lower(): v for k, v in response.getheaders()}
        return PeerResponse(response.status, received, b"".join(chunks))
    except PeerUnreachable:
        raise
    except TimeoutError as exc:
        raise PeerUnreachable(f"{url}: timed out ({exc})") from None
    except http.client.IncompleteRead as exc:
        raise PeerUnreachable(f"{url}: response cut off after {len(exc.partial)} bytes") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise PeerUnreachable(f"{url}: {type(exc).__name__}: {exc}") from None
    finally:
        conn.close()


def get(url: str, *, limits: Limits, accept: str = "application/json") -> PeerResponse:
    return request("GET", url, limits=limits, headers={"Accept": accept})


def post(
    url: str,
    body: bytes,
    *,
    limits: Limits,
    content_type: str,
    headers: Mapping[str, str] | None = None,
) -> PeerResponse:
    sent = {"Content-Type": content_type, **(headers or {})}
    return request("POST", url, limits=limits, body=body, headers=sent)
