import io

import pytest

from accounts import demo as accounts_demo
from assets import demo as assets_demo
from certificates import demo
from certificates.models import Bundle, Issuance, Retirement, Transfer
from certificates.replay import replay_ledger

pytestmark = pytest.mark.django_db


def test_demo_issues_sells_retires_and_is_idempotent(tmp_path):
    # given the demo participants and plant
    out = io.StringIO()
    accounts_demo.seed(out)
    assets_demo.seed(out, key_path=tmp_path / "demo.key")
    # when
    demo.seed(out)
    # then a day of hourly certificates, a sale to the buyer and a named retirement
    issuance = Issuance.objects.get()
    assert issuance.granularity == "hour" and issuance.volume_wh > 0
    assert (issuance.period_end - issuance.period_start).total_seconds() <= 24 * 3600
    buyer_transfers = Transfer.objects.filter(to_account__organisation__legal_name=demo.BUYER)
    assert buyer_transfers.count() >= 2
    retirement = Retirement.objects.get()
    assert retirement.beneficiary_name == demo.BENEFICIARY
    assert retirement.account.organisation.legal_name == demo.BUYER
    assert f"/statements/{retirement.public_id}/" in out.getvalue()
    assert replay_ledger().ok
    # and running it again changes nothing
    counts = (Bundle.objects.count(), Transfer.objects.count(), Retirement.objects.count())
    demo.seed(out)
    assert (Bundle.objects.count(), Transfer.objects.count(), Retirement.objects.count()) == counts
    assert "Demo certificates exist already." in out.getvalue()


def test_demo_without_the_plant_skips(db):
    out = io.StringIO()
    demo.seed(out)
    assert "skipped" in out.getvalue() and not Issuance.objects.exists()
