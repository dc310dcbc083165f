"""The proof journeys in a real browser: a buyer retires and opens the statement, an
auditor verifies one; both pages check the inclusion proofs and the completeness proof in
the browser. Same browser fixtures as tests/web/test_browser.py (at its size limit)."""

import io
import re
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.web.test_browser import CHROMIUM, browser, log_in, watched  # noqa: F401
from tests.web.world import build_web_world

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Chromium is not installed: run `make browser` (Debian's chromium package)",
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.mark.subject_index  # the statement proves its history complete, as in production
def test_buyer_accepts_transfers_retires_and_opens_the_statement(watched):  # noqa: F811
    world = build_web_world()
    log_in(watched, "buyer")
    page = watched.page
    # accept the incoming transfer: htmx swaps the list in place
    page.click(f"text=Accept transfer {world.pending_transfer.pk}")
    page.wait_for_selector("text=No transfer waits for your acceptance.")
    assert "Transfer accepted." in page.inner_text("#messages")
    # transfer part of a bundle
    bundle = world.bundles[0]
    page.fill("#transfer-heading ~ form #id_bundle", str(bundle.pk))
    page.fill("#id_to_account_number", world.producer_account.number)
    page.fill("#transfer-heading ~ form #id_volume_wh", "10")
    page.click("#transfer-heading ~ form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "Transfer recorded." in page.inner_text("#messages")
    # retire what is left of it, then read the statement and its proof check
    rest = page.inner_text("main table >> nth=2")
    assert rest
    first_active = page.locator("a:has-text('Use bundle')").first
    first_active.click()
    page.wait_for_load_state("networkidle")
    page.fill("#id_beneficiary_name", "Town hall")
    page.fill("#id_beneficiary_country", "DE")
    page.fill("#id_consumption_start", "2026-01-01")
    page.fill("#id_consumption_end", "2026-02-01")
    page.select_option("#id_purpose", "voluntary")
    page.click("#retire-heading ~ form button[type=submit]")
    page.wait_for_url(re.compile(r"/statements/"))
    page.wait_for_selector("#proof-check.ok")
    page.wait_for_selector("#completeness-check[data-verified=yes]")
    assert "checked in your browser" in page.inner_text("#completeness-check")
    watched.screenshot("journey-buyer-statement")
    # and download it as PDF: the file names the beneficiary and the statement
    public_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    with page.expect_download() as download:
        page.click("text=Download PDF")
    assert download.value.suggested_filename == f"statement-{public_id}.pdf"
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "Town hall (DE)" in text and public_id in text


@pytest.mark.subject_index
def test_auditor_verifies_a_statement_in_the_browser(watched):  # noqa: F811
    world = build_web_world()
    log_in(watched, "auditor")
    page = watched.page
    page.fill("#id_subject", str(world.retirement.public_id))
    page.click("button:has-text('Verify')")
    page.wait_for_selector("#proof-check[data-verified=yes]")
    assert "verified in your browser" in page.inner_text("#proof-check")
    page.wait_for_selector("#completeness-check[data-verified=yes]")
    assert "Complete history:" in page.inner_text("#completeness-check")
    watched.screenshot("journey-auditor-verify")
