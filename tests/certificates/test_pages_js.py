"""The public pages' in-browser checks (inclusion proofs, claim commitment), run under Node."""

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from certificates import services
from ledger.services import checkpoint_create, ledger_integrate
from tests.certificates.factories import DAY

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        shutil.which("node") is None, reason="needs Node.js to run the page's script"
    ),
]
RUNNER = Path(__file__).with_name("browser_proof_check.js")


def _run(html: bytes, tmp_path) -> dict[str, tuple[str, str]]:
    page = tmp_path / "page.html"
    page.write_bytes(html)
    out = subprocess.run(
        ["node", str(RUNNER), str(page)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    return {row[0]: (row[1], row[2]) for row in rows}


@pytest.fixture
def retired(issued):
    transfer = services.certificate_transfer(
        actor=issued.producer,
        bundle_id=issued.bundles[10].pk,
        to_account_id=issued.buyer_account.pk,
        volume_wh=300,
    )
    retirement = services.certificate_retire(
        actor=issued.buyer,
        items=[(transfer.bundle_id, 100)],
        beneficiary_name="Zoë's Café",
        beneficiary_country="DE",
        consumption_start=DAY,
        consumption_end=DAY + dt.timedelta(hours=1),
        purpose="disclosure",
    )
    ledger_integrate()
    checkpoint_create()
    return retirement


def test_statement_page_checks_proofs_and_claim_in_the_browser(retired, tmp_path):
    html = APIClient().get(f"/statements/{retired.public_id}/").content
    results = _run(html, tmp_path)
    assert results["proof-check"][0] == "ok", results
    assert results["claim-check"][0] == "ok", results
    assert "3 of 3" in results["proof-check"][1]


def test_a_tampered_page_fails_the_browser_check(retired, tmp_path):
    html = APIClient().get(f"/statements/{retired.public_id}/").content.decode()
    # swap the salt: the claim no longer opens the commitment
    html = html.replace(retired.claim_salt, "0" * 32)
    results = _run(html.encode(), tmp_path)
    assert results["claim-check"][0] == "bad", results


def test_certificate_page_checks_every_proof(retired, tmp_path):
    bundle = retired.items.get().bundle_id
    results = _run(APIClient().get(f"/certificates/{bundle}/").content, tmp_path)
    assert results["proof-check"][0] == "ok", results
    assert all(cls == "ok" for key, (cls, _text) in results.items() if key.startswith("proof-"))


def test_a_changed_event_fails_the_browser_proof_check(retired, tmp_path):
    import json
    import re

    bundle = retired.items.get().bundle_id
    html = APIClient().get(f"/certificates/{bundle}/").content.decode()
    match = re.search(
        r'(<script id="verify-bundle" type="application/json">)(.*?)(</script>)', html, re.S
    )
    bundle_doc = json.loads(match.group(2))
    bundle_doc["entries"][0]["event_b64"] = bundle_doc["entries"][1]["event_b64"]
    html = html.replace(match.group(2), json.dumps(bundle_doc))
    results = _run(html.encode(), tmp_path)
    assert results["proof-check"][0] == "bad", results
    seq = bundle_doc["entries"][0]["seq"]
    assert results[f"proof-{seq}"] == ("bad", "✗ FAILED")


@pytest.mark.subject_index
def test_the_pages_prove_the_history_complete_in_the_browser(retired, tmp_path):
    statement = APIClient().get(f"/statements/{retired.public_id}/").content
    assert b"Complete history: 3 entries, proven at checkpoint size" in statement
    results = _run(statement, tmp_path)
    assert results["completeness-check"][0] == "ok", results
    assert "checked in your browser" in results["completeness-check"][1]
    bundle = retired.items.get().bundle_id
    results = _run(APIClient().get(f"/certificates/{bundle}/").content, tmp_path)
    assert results["completeness-check"][0] == "ok", results


@pytest.mark.subject_index
def test_a_page_that_leaves_an_entry_out_fails_the_completeness_check(retired, tmp_path):
    import json
    import re

    html = APIClient().get(f"/statements/{retired.public_id}/").content.decode()
    match = re.search(
        r'(<script id="verify-bundle" type="application/json">)(.*?)(</script>)', html, re.S
    )
    doc = json.loads(match.group(2))
    del doc["entries"][1]  # the transfer: each remaining entry still proves its inclusion
    results = _run(html.replace(match.group(2), json.dumps(doc)).encode(), tmp_path)
    assert results["proof-check"][0] == "ok", results
    assert results["completeness-check"][0] == "bad", results
