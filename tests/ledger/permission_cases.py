"""Permission matrix rows for the ledger endpoints (see tests/registry/matrix.py).

The ledger is public and read-only: every role, signed in or not, gets the same answer.
The world: three events about `bundle:1`, integrated and covered by a signed checkpoint.
"""

from ledger.models import LedgerEntry
from ledger.services import checkpoint_create
from tests.ledger.factories import append_events, integrate_all
from tests.registry.matrix import Case, expect


def setup_world(world) -> None:
    append_events(3, subject=("bundle", 1))
    integrate_all()
    world.ledger_checkpoint, _created = checkpoint_create()
    world.ledger_entry = LedgerEntry.objects.order_by("-seq").first()


CASES = [
    Case("GET", "/api/v1/ledger/checkpoint", expect(200)),
    Case("GET", "/api/v1/ledger/checkpoints/", expect(200)),
    Case("GET", "/api/v1/ledger/checkpoints/latest/", expect(200)),
    Case(
        "GET",
        "/api/v1/ledger/checkpoints/{size}/",
        expect(200),
        name="the latest size",
        args=lambda w: {"size": w.ledger_checkpoint.size},
    ),
    Case(
        "GET",
        "/api/v1/ledger/checkpoints/{size}/",
        expect(404),
        name="a size never signed",
        args=lambda w: {"size": w.ledger_checkpoint.size + 1000},
    ),
    Case("GET", "/api/v1/ledger/entries/", expect(200)),
    Case(
        "GET",
        "/api/v1/ledger/entries/{seq}/",
        expect(200),
        args=lambda w: {"seq": w.ledger_entry.seq},
    ),
    # Without `seq`/`size` (`first`/`second`) the query is invalid for everyone alike; the
    # matrix cannot add a query string, so these rows pin "public, same answer for all".
    Case("GET", "/api/v1/ledger/proofs/inclusion/", expect(400)),
    Case("GET", "/api/v1/ledger/proofs/consistency/", expect(400)),
    Case(
        "GET",
        "/api/v1/ledger/subjects/{subject_type}/{subject_id}/",
        expect(200),
        args=lambda w: {"subject_type": "bundle", "subject_id": "1"},
    ),
    Case(
        "GET",
        "/api/v1/ledger/subjects/{subject_type}/{subject_id}/",
        expect(404),
        name="a kind no event names",
        args=lambda w: {"subject_type": "matrix", "subject_id": "1"},
    ),
    Case("GET", "/api/v1/ledger/keys/", expect(200)),
    Case("GET", "/api/v1/ledger/verifier-key/", expect(200)),
]
