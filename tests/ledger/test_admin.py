"""The read-only ledger admin, and its button that signs a checkpoint through the service."""

import pytest

from ledger.models import Checkpoint, LedgerEntry, TreeHead, TreeNode
from ledger.services import checkpoint_create
from tests.ledger.factories import append_events, integrate_all, ledger_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger():
    ledger_with(5)
    checkpoint_create()
    append_events(2)  # queued, not integrated


@pytest.mark.parametrize("model", [LedgerEntry, TreeNode, TreeHead, Checkpoint])
def test_lists_and_details_render_and_offer_no_changes(admin_client, ledger, model):
    # given
    obj = model.objects.order_by("pk").first()
    base = f"/admin/ledger/{model._meta.model_name}/"

    # when
    listing = admin_client.get(base)
    detail = admin_client.get(f"{base}{obj.pk}/change/")

    # then
    assert listing.status_code == 200 and detail.status_code == 200
    assert admin_client.get(f"{base}add/").status_code == 403
    assert admin_client.post(f"{base}{obj.pk}/delete/").status_code == 403


def test_status_shows_queue_length_and_latest_checkpoint(admin_client, ledger):
    page = admin_client.get("/admin/ledger/ledgerentry/").content.decode()
    assert "<strong>2</strong> events waiting" in page
    assert "<strong>size 5</strong>" in page
    head = admin_client.get(f"/admin/ledger/treehead/{TreeHead.objects.get().pk}/change/")
    assert "size 5 at" in head.content.decode()


def test_the_button_signs_a_checkpoint(admin_client, ledger):
    # given
    integrate_all()

    # when
    response = admin_client.post("/admin/ledger/checkpoint/create/", follow=True)

    # then
    assert response.status_code == 200
    assert "Signed a checkpoint at size 7" in response.content.decode()
    assert list(Checkpoint.objects.values_list("size", flat=True)) == [7, 5]
    again = admin_client.post("/admin/ledger/checkpoint/create/", follow=True)
    assert "has not grown" in again.content.decode()
    assert admin_client.get("/admin/ledger/checkpoint/create/").status_code == 405
