"""Ed25519 signature checks of a batch's rows, on a process-wide thread pool.

PyNaCl releases the GIL, so verification runs on every core while the rows are parsed
and while the writing transaction runs; the verdicts are collected at the end.
"""

from __future__ import annotations

import binascii
import os
from binascii import a2b_base64
from concurrent.futures import Future, ThreadPoolExecutor
from threading import Lock

from django.conf import settings
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from assets.ingest.records import RowError
from assets.validation import SIGNATURE_SIZE, decode_signature

VERIFY_CHUNK = 2048

_pool: ThreadPoolExecutor | None = None
_pool_lock = Lock()


def _verify_pool() -> ThreadPoolExecutor:
    global _pool  # one process-wide pool, created on first use
    with _pool_lock:
        if _pool is None:
            workers = settings.READINGS_VERIFY_THREADS or os.cpu_count() or 1
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ed25519")
        return _pool


def verify_many(items: list[tuple[int, bytes, bytes, bytes]]) -> list[int]:
    """Indices of the (index, message, signature, public key) items that do not verify."""
    bad = []
    for index, message, signature, public_key in items:
        try:
            crypto_sign_open(signature + message, public_key)
        except BadSignatureError:
            bad.append(index)
    return bad


def signature_decode(signature) -> bytes:
    """A row's signature as 64 bytes (base64 or hex text); RowError if malformed."""
    try:
        if isinstance(signature, str) and len(signature) == 88:
            raw = a2b_base64(signature, strict_mode=True)  # the common case, fast
            if len(raw) != SIGNATURE_SIZE:
                raise ValueError("not 64 bytes")
        else:
            raw = decode_signature(signature)
    except (ValueError, TypeError, binascii.Error):
        raise RowError(
            "signature", "signature_malformed", "A signature is 64 bytes, base64 or hex."
        ) from None
    return raw


class SignatureChecks:
    """Signatures queued in chunks of VERIFY_CHUNK for the pool; `wait` gathers the bad."""

    def __init__(self) -> None:
        self._batch: list[tuple[int, bytes, bytes, bytes]] = []
        self._futures: list[Future] = []

    def queue(self, index: int, message: bytes, signature: bytes, public_key: bytes) -> None:
        """Check `signature` of `message`; `index` names the entry in `wait`'s answer."""
        self._batch.append((index, message, signature, public_key))
        if len(self._batch) >= VERIFY_CHUNK:
            self.flush()

    def flush(self) -> None:
        """Hand the queued signatures to the pool now."""
        if self._batch:
            self._futures.append(_verify_pool().submit(verify_many, self._batch))
            self._batch = []

    def wait(self) -> list[int]:
        """The indices whose signature did not verify, once every verdict is in."""
        self.flush()
        bad: list[int] = []
        for future in self._futures:
            bad.extend(future.result())
        self._futures = []
        return bad
