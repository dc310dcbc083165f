"""`manage.py runregistry` drives CELERY_BEAT_SCHEDULE in-process when there is no broker."""

import os
import subprocess
import sys
import textwrap

from tests.conftest import REPO

# A fresh process, as `make run` starts one: no task module has been imported yet.
SCRIPT = textwrap.dedent(
    """
    import sys, threading
    import django
    django.setup()
    from django.conf import settings
    if "registry.tasks" in sys.modules:
        sys.exit(3)  # imported already: this check would prove nothing
    import registry.idempotency
    ran = threading.Event()
    registry.idempotency.idempotency_records_purge = lambda **kwargs: ran.set() or 0
    settings.CELERY_BEAT_SCHEDULE = {
        "idempotency-keys-purge": settings.CELERY_BEAT_SCHEDULE["idempotency-keys-purge"]
    }
    from registry.management.commands.runregistry import run_beat_schedule
    stop = threading.Event()
    thread = threading.Thread(target=run_beat_schedule, args=(stop,), daemon=True)
    thread.start()
    ok = ran.wait(30)
    stop.set()
    thread.join(5)
    sys.exit(0 if ok else 1)
    """
)


def test_the_in_process_scheduler_finds_and_runs_the_periodic_tasks(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env |= {
        "DJANGO_ENV": "development",
        "DJANGO_SETTINGS_MODULE": "registry.settings",
        "SQLITE_PATH": str(tmp_path / "db.sqlite3"),
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 3, "registry.tasks was imported by django.setup()"
    assert result.returncode == 0, result.stderr[-3000:]
