"""Federation endpoints outside the JSON API: the tlog-witness protocol, the status page,
the well-known identity document and the verifier-compatible mirror paths."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from federation import errors, selectors
from federation.api import views as api_views
from federation.protocol import MAX_REQUEST_BYTES, SIZE_CONTENT_TYPE, encode_size
from federation.witness import witness_add_checkpoint

TEXT = "text/plain; charset=utf-8"


@csrf_exempt
@require_POST
def add_checkpoint(request: HttpRequest) -> HttpResponse:
    """C2SP tlog-witness add-checkpoint: verify a peer's checkpoint, answer a cosignature.

    No login: the checkpoint's signature by a registered peer's key authenticates it.
    """
    length = request.META.get("CONTENT_LENGTH") or ""
    if length.isdigit() and int(length) > MAX_REQUEST_BYTES:
        return HttpResponse("request body too large\n", status=413, content_type=TEXT)
    body = request.read(MAX_REQUEST_BYTES + 1)
    if len(body) > MAX_REQUEST_BYTES:
        return HttpResponse("request body too large\n", status=413, content_type=TEXT)
    try:
        cosignature = witness_add_checkpoint(body=body)
    except errors.WitnessOldSizeMismatch as exc:
        return HttpResponse(
            encode_size(exc.latest_size), status=409, content_type=SIZE_CONTENT_TYPE
        )
    except errors.WitnessCheckpointConflict as exc:
        return HttpResponse(exc.conflicting_note, status=409, content_type=TEXT)
    except errors.WitnessError as exc:
        return HttpResponse(f"{exc.detail}\n", status=exc.status, content_type=TEXT)
    return HttpResponse(cosignature, content_type=TEXT)


@require_safe
def status_page(request: HttpRequest) -> HttpResponse:
    """A small HTML page: our anchoring, and every peer's mirror and witness state."""
    return render(request, "federation/status.html", {"status": selectors.federation_status()})


@require_safe
def identity(request: HttpRequest) -> JsonResponse:
    """/.well-known/gridproof/federation: what a peer needs to register this registry."""
    return JsonResponse(api_views.identity_body(request))


class _Alias:
    """The mirror API at the ledger's paths, for `python -m ledger.verify --url`."""

    schema = None


class MirrorCheckpointAlias(_Alias, api_views.MirrorCheckpointNoteView):
    pass


class MirrorEntryAlias(_Alias, api_views.MirrorEntryDetailView):
    pass


class MirrorEntryListAlias(_Alias, api_views.MirrorEntryListView):
    pass


class MirrorInclusionAlias(_Alias, api_views.MirrorInclusionProofView):
    pass


class MirrorConsistencyAlias(_Alias, api_views.MirrorConsistencyProofView):
    pass
