"""Serve the registry for development: web server plus the periodic schedule.

With no CELERY_BROKER_URL, tasks run eagerly in-process, so the Celery beat
schedule is driven here by a small scheduler thread instead of `celery beat`.
"""

import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from registry.celery import app


def _interval_seconds(schedule) -> float:
    if isinstance(schedule, int | float):
        return float(schedule)
    return schedule.run_every.total_seconds()


def run_beat_schedule(stop: threading.Event) -> None:
    """Call every task of CELERY_BEAT_SCHEDULE at its interval until `stop` is set."""
    # Task modules (<app>/tasks.py) are discovered lazily, when a worker or beat starts;
    # without this, app.tasks has none of them and every entry fails with KeyError.
    app.loader.import_default_modules()
    entries = settings.CELERY_BEAT_SCHEDULE
    due = {name: time.monotonic() for name in entries}
    while not stop.is_set():
        now = time.monotonic()
        for name, entry in entries.items():
            if now >= due[name]:
                due[name] = now + _interval_seconds(entry["schedule"])
                try:
                    app.tasks[entry["task"]].apply(
                        args=entry.get("args", ()), kwargs=entry.get("kwargs", {})
                    )
                except Exception:
                    app.log.get_default_logger().exception("periodic task %s failed", name)
        stop.wait(0.5)


class Command(BaseCommand):
    help = "Serve the registry with its periodic tasks (development, no broker needed)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args, addrport: str, **options) -> None:
        if settings.CELERY_BROKER_URL:
            self.stdout.write("A broker is set: `celery -A registry beat` runs the schedule.")
        else:
            stop = threading.Event()
            threading.Thread(target=run_beat_schedule, args=(stop,), daemon=True).start()
            names = ", ".join(settings.CELERY_BEAT_SCHEDULE) or "none"
            self.stdout.write(f"Periodic tasks run in-process: {names}")
        call_command("runserver", addrport, use_reloader=False)
