"""HTML pages as PDF files (WeasyPrint), for the documents people keep: statements, receipts.

The PDF is the page itself, laid out with its print CSS, so the file and the page say the
same thing. WeasyPrint would fetch whatever the HTML links to; here it gets only this
registry's own static files, read from disk, and nothing from any host (a statement's
data is public but the server must not be made to call out while rendering it).
WeasyPrint needs Pango and a font with Cyrillic (Debian `libpango-1.0-0`,
`libpangoft2-1.0-0`, `fonts-dejavu-core`; the Makefile installs them).
"""

import mimetypes
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import HttpResponse

PDF_MEDIA_TYPE = "application/pdf"
# The origin the HTML is laid out under; never fetched (see _static_only).
_BASE_URL = "https://registry.invalid/"
_render_lock = threading.Lock()
"""One layout at a time per process. Pango and fontconfig under WeasyPrint are not
documented as thread-safe and the gthread web workers (docs/operations.md, "Worker model")
serve several requests per process; the layout is CPU-bound Python, which the GIL runs one
thread at a time anyway, so the lock costs the process no throughput."""


class PDFFetchRefused(ValueError):
    """WeasyPrint asked for something that is not one of the registry's static files."""


def _static_path(url: str) -> str | None:
    parts = urlsplit(url)
    static_url = "/" + settings.STATIC_URL.lstrip("/")
    if f"{parts.scheme}://{parts.netloc}/" != _BASE_URL or not parts.path.startswith(static_url):
        return None
    name = unquote(parts.path[len(static_url) :])
    if not name or ".." in name.split("/"):
        return None
    if staticfiles_storage.exists(name):  # collected (production)
        return staticfiles_storage.path(name)
    return finders.find(name)  # the apps' static folders (development, tests)


def _fetcher():
    """WeasyPrint's URL fetcher, limited to the registry's static files read from disk."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class StaticOnly(URLFetcher):
        def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
            path = _static_path(url)
            if path is None:
                raise PDFFetchRefused(f"not fetched while rendering a PDF: {url}")
            with open(path, "rb") as handle:
                body = handle.read()
            content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
            return URLFetcherResponse(url, body, headers={"Content-Type": content_type})

    return StaticOnly()


def html_to_pdf(html: str) -> bytes:
    """Lay out a rendered page (its links relative to this site) as PDF with its print CSS."""
    # Imported here: WeasyPrint loads Pango and its fonts, which only PDF requests need.
    import weasyprint

    with _render_lock:
        document = weasyprint.HTML(string=html, base_url=_BASE_URL, url_fetcher=_fetcher())
        return document.write_pdf()


def pdf_response(html: str, *, filename: str) -> HttpResponse:
    """The page as a PDF download named `filename`."""
    response = HttpResponse(html_to_pdf(html), content_type=PDF_MEDIA_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
