"""Django's PostgreSQL backend, minus the health check of a connection that just worked,
plus the names of the statements its session has prepared (registry/prepared.py).

With CONN_HEALTH_CHECKS, Django sends `SELECT 1` before the first query of every request
on a reused connection: a round trip per request, about a tenth of a one-bundle read over
HTTP (benchmarks/README.md, "One-bundle read"). Here the check is skipped when the
connection was last used less than HEALTH_CHECK_SKIP_SECONDS ago by a request that ended
without a connection error; a connection idle for longer is checked as before.

What a connection that died inside that window costs (a database restart, a terminated
backend): the request's first query fails with OperationalError, the request answers
503 `database_unavailable` (registry/api/exceptions.py), Django closes the connection at
the end of that request (it had errors and fails `is_usable`), and the next request
opens a new one. At most one 503 per connection, and only in the second after its last
success (tests/registry/test_db_backend.py).
"""

import time

from django.db.backends.postgresql import base

HEALTH_CHECK_SKIP_SECONDS = 1.0


class DatabaseWrapper(base.DatabaseWrapper):
    # When a cursor was last opened on the connection before a request boundary found it
    # still usable (time.monotonic()); None: not since it was opened.
    last_healthy_at: float | None = None
    # When a cursor was last opened since Django's last request-boundary call, if one was.
    _used_at: float | None = None
    # The prepared statements of the current server session (registry/prepared.py).
    prepared_statements: set[str]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.prepared_statements = set()

    def close_if_unusable_or_obsolete(self) -> None:
        # Django calls this at the start and at the end of each request (and Celery around
        # each task). Still open after it: no error since the cursor was used, or errors
        # that left the connection usable (the parent checked).
        used_at, self._used_at = self._used_at, None
        super().close_if_unusable_or_obsolete()
        if used_at is not None and self.connection is not None:
            self.last_healthy_at = used_at

    def close_if_health_check_failed(self) -> None:
        # Django calls this before every cursor.
        now = self._used_at = time.monotonic()
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and self.last_healthy_at is not None
            and now - self.last_healthy_at < HEALTH_CHECK_SKIP_SECONDS
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def connect(self) -> None:
        self.last_healthy_at = None
        self.prepared_statements = set()
        super().connect()
