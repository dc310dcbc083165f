"""Ledger URLs outside the API: the verifier key at a well-known address, and the log's
C2SP tlog-tiles under /tlog/ (LEDGER_TILES_DIR, read-only)."""

import re
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_safe

from ledger.keys import registry_signer

TILE_PATH = re.compile(
    r"tile/(?:entries|entries-u32|[0-9]|[1-5][0-9]|6[0-3])/(?:x\d{3}/)*\d{3}(?:\.p/\d{1,3})?"
)


@require_safe
def verifier_key(request: HttpRequest) -> HttpResponse:
    """The note verifier key of this registry's checkpoints, one line of text/plain."""
    response = HttpResponse(registry_signer().vkey + "\n", content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    return response


@require_safe
def tlog_file(request: HttpRequest, name: str) -> FileResponse:
    """A file of the tiles directory: the checkpoint (revalidated on every use) or a tile
    or entry bundle (immutable: a path's bytes never change). 404 when tiles are off."""
    directory = settings.LEDGER_TILES_DIR
    if not directory or (name != "checkpoint" and not TILE_PATH.fullmatch(name)):
        raise Http404("No such tile.")
    try:
        handle = (Path(directory) / name).open("rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise Http404("No such tile.") from None
    if name == "checkpoint":
        response = FileResponse(handle, content_type="text/plain; charset=utf-8")
        response["Cache-Control"] = "no-cache"
    else:
        response = FileResponse(handle, content_type="application/octet-stream")
        response["Cache-Control"] = "public, max-age=31536000, immutable"
    response["Access-Control-Allow-Origin"] = "*"
    return response


urlpatterns = [
    path(".well-known/gridproof/verifier-key", verifier_key, name="ledger-verifier-key-text"),
    path("tlog/<path:name>", tlog_file, name="ledger-tlog-file"),
]
