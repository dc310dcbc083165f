"""Two operators rotate the log key at once (PostgreSQL, real threads): one announcement."""

import threading

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings

from ledger.errors import KeyRotationRefused
from ledger.integrity import ledger_verify
from ledger.models import LedgerEntry
from ledger.rotation import log_key_rotate
from ledger.services import checkpoint_create
from ledger.signing import Signer
from ledger.verify.keyhistory import ROTATION_KIND
from tests.conftest import requires_postgres
from tests.ledger.factories import integrate_all, ledger_with

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_rotations_announce_the_key_once():
    # given
    ledger_with(3)
    new = Signer(settings.REGISTRY_ORIGIN, b"\x03" * 32)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def rotate() -> None:
        try:
            barrier.wait()
            log_key_rotate(actor="system:test")
            outcomes.append("announced")
        except KeyRotationRefused as exc:
            outcomes.append(exc.detail.split(":")[0])
        except BaseException as exc:  # reported below
            outcomes.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=rotate) for _ in range(4)]

    # when (settings are process-wide: staged once for every thread)
    with override_settings(REGISTRY_NEXT_SIGNING_KEY=new.private_key()):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        integrate_all()
        checkpoint, _ = checkpoint_create()

    # then: one announcement; the others found it pending (the head lock queued them)
    assert outcomes.count("announced") == 1, outcomes
    refusals = [o for o in outcomes if o != "announced"]
    # once integrated, the staged key is current and the configured one is the retired key
    waiting, retired = "A key rotation is already waiting", "already signed this log"
    assert all(o.startswith(waiting) or retired in o for o in refusals), outcomes
    assert LedgerEntry.objects.filter(kind=ROTATION_KIND).count() == 1
    assert checkpoint.key_id == new.verifier.key_id.hex()
    assert ledger_verify().checkpoints == 1
