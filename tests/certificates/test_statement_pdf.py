"""The retirement statement as a PDF: the page's print layout, in the reader's language,
rendered without fetching anything from another host."""

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse
from pypdf import PdfReader

from registry.pdf import html_to_pdf
from tests.web.world import build_web_world

pytestmark = pytest.mark.django_db


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


@pytest.fixture
def world():
    return build_web_world()


def test_the_statement_downloads_as_a_pdf_saying_what_the_page_says(
    client, world, django_assert_max_num_queries
):
    # given the statement of the world's retirement (50 Wh for a bakery)
    public_id = world.retirement.public_id
    # when it is downloaded as PDF
    with django_assert_max_num_queries(20):
        response = client.get(reverse("certificates:statement-pdf", args=[public_id]))
    # then it is a PDF file named for the statement, with its number, volume and beneficiary
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="statement-{public_id}.pdf"'
    assert response.content.startswith(b"%PDF")
    text = pdf_text(response.content)
    assert str(public_id) in text
    assert "Retirement statement" in text
    assert "50 Wh" in text
    assert "Bäckerei Sonnenschein (DE)" in text
    assert world.buyer_account.number in text
    # the in-browser checks do not run in a file: their placeholders are not printed
    assert "Checking proofs" not in text and "Download PDF" not in text


def test_a_russian_reader_gets_the_statement_in_russian(client, world):
    # given a reader who chose Russian
    client.post(reverse("set_language"), {"language": "ru", "next": "/"})
    # when they download the statement
    response = client.get(reverse("certificates:statement-pdf", args=[world.retirement.public_id]))
    # then its words are Russian (Cyrillic embedded in the PDF's font)
    text = pdf_text(response.content)
    assert "Заявление о погашении" in text  # noqa: RUF001
    assert "Бенефициар" in text
    assert "Retirement statement" not in text


def test_the_statement_page_links_its_pdf(client, world):
    public_id = world.retirement.public_id
    body = client.get(reverse("certificates:statement", args=[public_id])).content.decode()
    assert f'href="/statements/{public_id}.pdf"' in body


def test_an_unknown_statement_is_404(client, db):
    url = reverse("certificates:statement-pdf", args=["00000000-0000-4000-8000-000000000000"])
    assert client.get(url).status_code == 404


def test_the_renderer_fetches_nothing_from_another_host(settings):
    # given a server that records every request, and a page pointing at it and at our CSS
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.end_headers()
            self.wfile.write(b"body { color: red }")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    other = f"http://127.0.0.1:{server.server_port}"
    ours = f"/{settings.STATIC_URL.strip('/')}/certificates/certificates.css"
    html = (
        f'<link rel="stylesheet" href="{other}/print.css">'
        f'<link rel="stylesheet" href="{ours}">'
        f'<img src="{other}/logo.png" alt="logo"><p>Statement</p>'
    )
    try:
        # when it is rendered as PDF
        pdf = html_to_pdf(html)
    finally:
        server.shutdown()
        server.server_close()
    # then the other host was never asked, and the page still renders
    assert hits == []
    assert "Statement" in pdf_text(pdf)


def test_the_api_sends_the_same_pdf_when_asked_for_it(client, world):
    # given the statement's API address
    url = f"/api/v1/statements/{world.retirement.public_id}/"
    # when a client asks for PDF, in Russian
    response = client.get(url, HTTP_ACCEPT="application/pdf", HTTP_ACCEPT_LANGUAGE="ru")
    # then it gets the statement as a PDF file, in Russian
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    text = pdf_text(response.content)
    assert "Заявление о погашении" in text and str(world.retirement.public_id) in text  # noqa: RUF001
    # and ?format=pdf does the same, while JSON stays the default
    assert client.get(url, {"format": "pdf"}).content.startswith(b"%PDF")
    assert client.get(url).json()["retirement"]["public_id"] == str(world.retirement.public_id)


def test_the_api_refuses_an_unknown_statement_in_json_even_when_pdf_is_asked(client, db):
    url = "/api/v1/statements/00000000-0000-4000-8000-000000000000/"
    response = client.get(url, HTTP_ACCEPT="application/pdf")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "retirement_not_found"


def test_a_process_lays_out_one_pdf_at_a_time(monkeypatch):
    # given: WeasyPrint's layout replaced by one that looks at the process's render lock
    import weasyprint

    from registry import pdf

    held = []

    class Layout:
        def __init__(self, **_kwargs) -> None:
            held.append(pdf._render_lock.locked())

        def write_pdf(self) -> bytes:
            held.append(pdf._render_lock.locked())
            return b"%PDF-"

    monkeypatch.setattr(weasyprint, "HTML", Layout)

    # when: a gthread worker's request thread renders a statement
    body = html_to_pdf("<p>statement</p>")

    # then: the layout ran under the lock, and the lock is free again for the next thread
    assert body == b"%PDF-"
    assert held == [True, True]
    assert not pdf._render_lock.locked()
