"""Starting the integrator after a commit, without one task (or one round trip) per commit.

`ledger.services` runs `kick()` on commit of every transaction that appended an event when
there is a broker (without one, it integrates right there). Then:

- a flag (in Redis, LEDGER_KICK_REDIS_URL, by default the Redis broker, so that web and
  worker processes share it) means "an integrator task is queued or running": a kick
  enqueues the task only if it is the one that sets the flag;
- the running task holds the flag and integrates what has been committed every
  POLL_SECONDS, until nothing has come for a while (`ledger_integrate_queued`);
- a process that finds the flag held does not look again for QUIET_SECONDS, and the
  task, after it clears the flag, keeps polling for longer than that, so the commits of
  those quiet processes are still integrated. Under load a process looks at the flag ten
  times a second, not once per commit.

Polling costs the worker one cheap query per POLL_SECONDS while it is active and the queue
is empty, nothing on the write path; while events keep coming it skips that look, and each
batch is two round trips on PostgreSQL (`ledger.services.ledger_integrate` with the loop's
`TreeCache`). Without Redis the flag is per process. The periodic sweep
(LEDGER_SWEEP_SECONDS) integrates whatever a lost task left behind.

Tasks import services, never the reverse: this module imports neither. The integrator task
is registered into INTEGRATOR_TASK by `LedgerConfig.ready()`.
"""

import threading
import time

from django.conf import settings

from registry.hooks import Hook

FLAG_KEY = "gridproof:ledger:integrator-kicked"
FLAG_TTL = 2  # seconds: how long a flag outlives a worker that died holding it
QUIET_SECONDS = 0.1
"""After finding the flag held, a process does not check it again for this long."""
POLL_SECONDS = 0.005
"""How often the task holding the flag looks for newly committed events."""


class _LocalFlag:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._expires = 0.0

    def set_if_absent(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if now < self._expires:
                return False
            self._expires = now + FLAG_TTL
            return True

    def refresh(self) -> None:
        with self._lock:
            self._expires = time.monotonic() + FLAG_TTL

    def clear(self) -> None:
        with self._lock:
            self._expires = 0.0


class _RedisFlag:
    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)

    def set_if_absent(self) -> bool:
        return bool(self._redis.set(FLAG_KEY, 1, nx=True, ex=FLAG_TTL))

    def refresh(self) -> None:
        self._redis.set(FLAG_KEY, 1, ex=FLAG_TTL)

    def clear(self) -> None:
        self._redis.delete(FLAG_KEY)


INTEGRATOR_TASK = Hook("ledger.integrator_task")
"""The Celery task `kick()` enqueues (ledger.tasks.ledger_integrate_task)."""

_flags: dict[str, _LocalFlag | _RedisFlag] = {}
_flags_lock = threading.Lock()
_quiet_until = 0.0
"""Per process, shared by a gthread worker's threads: a stale read only costs one more look
at the flag, so it is not locked."""


def kick_flag() -> _LocalFlag | _RedisFlag:
    """The process's one flag per URL: its threads must share it, or two of them could each
    set a flag of their own and both enqueue the task."""
    url = settings.LEDGER_KICK_REDIS_URL
    flag = _flags.get(url)
    if flag is None:
        with _flags_lock:
            flag = _flags.get(url)
            if flag is None:
                flag = _flags[url] = _RedisFlag(url) if url else _LocalFlag()
    return flag


def kick() -> None:
    """Make sure an integrator task will see this commit (with a broker)."""
    global _quiet_until
    now = time.monotonic()
    if now < _quiet_until:
        return  # the task holding the flag polls for this commit
    if kick_flag().set_if_absent():
        INTEGRATOR_TASK.one().delay()
    else:
        _quiet_until = now + QUIET_SECONDS
