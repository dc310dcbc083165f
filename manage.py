#!/usr/bin/env python
"""Django's command-line utility for GridProof.

In a development checkout (one where `make` has run: it writes `.dev/development`), the
README's commands work without `DJANGO_ENV=development` in front of them. The marker is
git- and docker-ignored and only this script reads it: the web server, Celery and the Docker
image never see it, and an explicit `DJANGO_ENV` (e.g. `production`) always wins.
"""

import os
import sys
from pathlib import Path

DEV_MARKER = Path(__file__).resolve().parent / ".dev" / "development"


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")
    if not os.environ.get("DJANGO_ENV", "").strip() and DEV_MARKER.is_file():
        os.environ["DJANGO_ENV"] = "development"
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
