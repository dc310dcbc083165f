import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from tests.ledger.audited_tests import CAUSED_KINDS, is_audited

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

requires_postgres = pytest.mark.skipif(
    not settings.USING_POSTGRES,
    reason="needs PostgreSQL: set DATABASE_URL=postgres://… (SQLite has no row locks "
    "or concurrent writers to test)",
)


def pytest_configure(config) -> None:
    # Tests run tasks eagerly even when a broker is configured; the
    # celery_worker_process fixture switches to the real worker for its test.
    from registry.celery import app

    app.conf.task_always_eager = True
    # PBKDF2 costs ~0.3 s a password and the suites make thousands of users; set for the
    # whole session so that data built once per module (the permission matrix) uses it too.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True, scope="session")
def _demo_logins_outside_the_repository(tmp_path_factory):
    # seed_demo saves the demo logins beside the SQLite file; tests keep them in a tmp dir.
    from accounts import demo

    path = tmp_path_factory.mktemp("demo") / "demo-logins"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo, "logins_file", lambda: path)
        yield


@pytest.fixture(autouse=True)
def _every_html_page_carries_a_content_security_policy(monkeypatch):
    """Every HTML response any test renders through the test client carries the CSP."""
    from django.test.client import ClientHandler

    handle = ClientHandler.__call__

    def checked(self, environ):
        response = handle(self, environ)
        if response.get("Content-Type", "").startswith("text/html"):
            policy = response.get("Content-Security-Policy") or response.get(
                "Content-Security-Policy-Report-Only", ""
            )
            assert "default-src 'self'" in policy, (
                f"{environ.get('PATH_INFO')} answered HTML without the Content-Security-Policy"
            )
        return response

    monkeypatch.setattr(ClientHandler, "__call__", checked)


@pytest.fixture(autouse=True)
def _subject_index_only_where_marked(request, settings):
    """Checkpoints commit the subject map (an extra entry each) only in tests marked
    `subject_index`: the others were written counting entries without it."""
    settings.LEDGER_SUBJECT_INDEX = request.node.get_closest_marker("subject_index") is not None


def pytest_collection_modifyitems(config, items) -> None:
    # The service tests of every app run under the subject audit (tests/ledger/
    # audited_tests.py); tests marked `last` (the audit's catalogue check) run after all.
    for item in items:
        if is_audited(item.nodeid):
            item.add_marker(pytest.mark.subject_audit)
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)


def subject_audit_wanted(item) -> bool:
    """Whether this test runs under the subject audit (SUBJECT_AUDIT unset: the marked ones;
    1: all; 0: none, e.g. when another run of the same suite audits them)."""
    switch = os.environ.get("SUBJECT_AUDIT", "")
    if switch in ("0", "1"):
        return switch == "1"
    return item.get_closest_marker("subject_audit") is not None


@pytest.fixture(autouse=True)
def _subject_audit(request):
    """Tests marked `subject_audit` that use the database also check that each event they
    cause names every object its write changed (tests/ledger/subject_audit.py).
    SUBJECT_AUDIT=1 audits every test that uses the database, SUBJECT_AUDIT=0 none."""
    uses_db = request.node.get_closest_marker("django_db") is not None or any(
        name in request.fixturenames for name in ("db", "transactional_db")
    )
    if not uses_db or not subject_audit_wanted(request.node):
        yield
        return
    from tests.ledger.subject_audit import SubjectAudit, replay_gaps

    request.getfixturevalue("_django_db_helper")
    audit = SubjectAudit()
    with audit.watching():
        yield
    CAUSED_KINDS.update(audit.kinds)
    assert not audit.unknown_kinds, f"kinds missing from SUBJECT_KINDS: {audit.unknown_kinds}"
    assert not audit.gaps, "\n".join(map(str, audit.gaps))
    assert replay_gaps() == []


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def ledger_pending_count():
    """How many ledger events were queued (integrated or not) since the test began."""
    from ledger.models import PendingEvent

    def count() -> int:
        total = PendingEvent.objects.count()
        try:
            from ledger.models import LedgerEntry
        except ImportError:
            return total
        return total + LedgerEntry.objects.count()

    return count


@pytest.fixture
def celery_worker_process(transactional_db):
    """A real `celery worker` subprocess against the test database and the real broker.

    Skips unless CELERY_BROKER_URL points at a broker (CI sets Redis). The worker
    sees only committed rows, so tests using it are transactional.
    """
    if not settings.CELERY_BROKER_URL:
        pytest.skip("needs a real broker: set CELERY_BROKER_URL (CI uses the local Redis)")
    if not settings.USING_POSTGRES:
        pytest.skip("a separate worker process needs PostgreSQL (the test SQLite is in memory)")
    db = connection.settings_dict
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    url = f"postgres://{db['USER'] or ''}@{host}/{db['NAME']}"
    env = os.environ | {"DATABASE_URL": url, "DJANGO_ENV": "development"}
    celery = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
    queue = f"test-{os.getpid()}-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        [celery, "-A", "registry", "worker", "--pool=solo", "-Q", queue, "--loglevel=WARNING"],
        cwd=REPO,
        env=env,
        start_new_session=True,
    )
    from registry.celery import app

    app.conf.task_default_queue = queue
    app.conf.task_always_eager = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            replies = app.control.ping(timeout=1, destination=None) or []
            if any(queue_workers for queue_workers in replies):
                break
            if proc.poll() is not None:
                pytest.fail(f"celery worker exited with {proc.returncode}")
        else:
            pytest.fail("celery worker did not answer a ping within 60 s")
        yield proc
    finally:
        app.conf.task_default_queue = "celery"
        app.conf.task_always_eager = True
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
