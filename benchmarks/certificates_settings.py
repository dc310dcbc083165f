"""Settings for the HTTP benchmarks (http_support.py): the registry plus a bare endpoint."""

from registry.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.certificates_urls"
