"""Cache headers for public responses that are the same for everybody.

What can never change (a ledger entry, a proof for given sizes, a checkpoint of a given
size) is served as immutable; what follows the latest checkpoint gets a short max-age.
"""

import hashlib

from django.utils.cache import get_conditional_response, patch_vary_headers
from rest_framework.response import Response

IMMUTABLE = "public, max-age=31536000, immutable"
SHORT_MAX_AGE = 5  # seconds: the latest checkpoint moves every CHECKPOINT_INTERVAL_SECONDS


def cached(request, response: Response, *, immutable: bool, max_age: int = SHORT_MAX_AGE):
    """Cache-Control, Vary and a content ETag (answering If-None-Match with 304)."""
    response["Cache-Control"] = IMMUTABLE if immutable else f"public, max-age={max_age}"
    patch_vary_headers(response, ["Accept"])

    def add_etag(rendered):
        rendered["ETag"] = f'"{hashlib.sha256(rendered.content).hexdigest()[:32]}"'
        return get_conditional_response(request, etag=rendered["ETag"], response=rendered)

    response.add_post_render_callback(add_etag)
    return response
