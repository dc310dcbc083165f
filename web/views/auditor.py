"""The auditor's dashboard: ledger health, witnesses, verify in the browser, proof files."""

import uuid

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from certificates import selectors as cert_selectors
from certificates.api.serializers import StatementOutputSerializer
from certificates.views import _timeline
from federation import selectors as federation_selectors
from federation.errors import AnchoredCheckpointNotFound
from ledger import selectors as ledger_selectors
from ledger.errors import CheckpointNotFound
from ledger.keys import registry_signer
from web.forms import VerifyForm
from web.views.common import role_required


def _auditor(roles) -> bool:
    return bool(roles.auditor or roles.issuing_body)


@role_required(_auditor)
def dashboard(request: HttpRequest) -> HttpResponse:
    """Is the ledger healthy: growing, integrated promptly, signed and cosigned?"""
    checkpoints = list(ledger_selectors.checkpoint_list().order_by("-size")[:10])
    cosigned = federation_selectors.anchor_cosignature_counts(sizes=[c.size for c in checkpoints])
    oldest = ledger_selectors.ledger_queue_oldest()
    peers = federation_selectors.peer_status_list()
    context = {
        "size": ledger_selectors.ledger_tree_size(),
        "queue": ledger_selectors.ledger_queue_length(),
        "delay_seconds": (timezone.now() - oldest).total_seconds() if oldest else 0,
        "checkpoints": [(c, cosigned.get(c.size)) for c in checkpoints],
        "anchoring": federation_selectors.anchoring_delays(),
        "quorum": settings.ANCHOR_QUORUM,
        "witnesses": [p for p in peers if p.peer.is_witness],
        "mirrors": [p for p in peers if p.peer.is_mirror],
        "vkey": registry_signer().vkey,
        "form": VerifyForm(),
    }
    return render(request, "web/auditor/dashboard.html", context)


def _subject(text: str):
    """A bundle id or a statement's UUID."""
    text = text.strip()
    if text.isascii() and text.isdigit():
        bundle = cert_selectors.bundle_public(bundle_id=int(text))
        return ("bundle", bundle) if bundle is not None else None
    try:
        public_id = uuid.UUID(text)
    except ValueError:
        return None
    retirement = cert_selectors.retirement_by_public_id(public_id=public_id)
    return ("statement", retirement) if retirement is not None else None


@require_GET
@role_required(_auditor)
def verify(request: HttpRequest) -> HttpResponse:
    """Check a certificate's or a statement's ledger entries in the browser (proofs.js)."""
    form = VerifyForm(request.GET or None)
    context = {"form": form, "vkey": registry_signer().vkey}
    if form.is_valid():
        found = _subject(form.cleaned_data["subject"])
        if found is None:
            form.add_error("subject", "No certificate bundle or statement with this id.")
        elif found[0] == "bundle":
            history = cert_selectors.bundle_history(bundle_id=found[1].pk)
            context.update(
                kind="bundle",
                bundle=found[1],
                timeline=_timeline(history),
                verify_bundle=history.verify_bundle(),
                pending=history.pending,
            )
        else:
            retirement = found[1]
            statement = cert_selectors.retirement_statement(retirement=retirement)
            data = StatementOutputSerializer(statement, context={"request": request}).data
            context.update(
                kind="statement",
                retirement=retirement,
                timeline=[{"seq": s.seq, "kind": s.kind, "at": s.at} for s in statement["history"]],
                verify_bundle={
                    "checkpoint": data["checkpoint"],
                    "entries": data["entries"],
                    "completeness": data["completeness"],
                },
            )
    return render(request, "web/auditor/verify.html", context)


@require_GET
@role_required(_auditor)
def checkpoint_note(request: HttpRequest) -> HttpResponse:
    """The latest anchored checkpoint with its cosignatures, or else the latest signed one."""
    try:
        note = federation_selectors.anchor_note(federation_selectors.anchor_latest())
    except AnchoredCheckpointNotFound:
        try:
            note = ledger_selectors.checkpoint_latest().note
        except CheckpointNotFound as error:
            raise Http404(error.detail) from error
    response = HttpResponse(note, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="checkpoint.note"'
    return response


@require_GET
@role_required(_auditor)
def history_file(request: HttpRequest, bundle_id: int) -> HttpResponse:
    """A bundle's history bundle for `python -m ledger.verify history --file`."""
    if cert_selectors.bundle_public(bundle_id=bundle_id) is None:
        raise Http404
    bundle = cert_selectors.bundle_history(bundle_id=bundle_id).verify_bundle()
    response = JsonResponse(bundle, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="bundle-{bundle_id}-history.json"'
    return response
