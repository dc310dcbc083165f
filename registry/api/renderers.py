"""Renderers for API views whose success bodies are not JSON (signed notes, entry bundles,
PDF documents)."""

from rest_framework.renderers import BaseRenderer, JSONRenderer


class PlainTextRenderer(BaseRenderer):
    """A body that is already text (a signed note), sent as text/plain UTF-8."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return str(data).encode(self.charset)


class PDFRenderer(BaseRenderer):
    """Lets clients ask for `Accept: application/pdf` (or `?format=pdf`); the view sends the
    file itself as an HttpResponse, so this renderer only takes part in the negotiation."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return bytes(data)


class JSONErrorsMixin:
    """For views that answer text or binary: their errors keep the common JSON shape.

    Put it before the view's base class (`class V(JSONErrorsMixin, APIView)`).
    """

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code >= 400:
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
