"""Container healthcheck command: GET /healthz from inside the web container (stdlib only,
no Django; the endpoint itself is registry/probes.py). Docker's HEALTHCHECK runs:

    python -m registry.healthcheck [URL]      # default http://127.0.0.1:8000/healthz

Django answers only to host names in ALLOWED_HOSTS (any other Host header gets a 400),
so the request names the first concrete host of ALLOWED_HOSTS, read from the same
environment variable as the settings. Exit status 0 when healthy, 1 otherwise.
"""

import os
import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8000/healthz"


def host_header(allowed_hosts: str) -> str:
    """The first entry of ALLOWED_HOSTS that names a host (".example.org" -> "example.org")."""
    for entry in allowed_hosts.split(","):
        entry = entry.strip().lstrip(".")
        if entry and entry != "*":
            return entry
    return "localhost"


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else DEFAULT_URL
    request = urllib.request.Request(  # noqa: S310 - a fixed http URL or the operator's own
        url,
        headers={
            "Host": host_header(os.environ.get("ALLOWED_HOSTS", "")),
            # Behind the TLS proxy in production; /healthz is exempt from the redirect anyway.
            "X-Forwarded-Proto": "https",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            healthy = response.status == 200
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
