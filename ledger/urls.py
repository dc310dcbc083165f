"""Ledger URLs outside the API: the verifier key at a well-known address."""

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_safe

from ledger.keys import registry_signer


@require_safe
def verifier_key(request: HttpRequest) -> HttpResponse:
    """The note verifier key of this registry's checkpoints, one line of text/plain."""
    response = HttpResponse(registry_signer().vkey + "\n", content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    return response


urlpatterns = [
    path(".well-known/gridproof/verifier-key", verifier_key, name="ledger-verifier-key-text"),
]
