"""The Content-Security-Policy: strict on every HTML page, no inline code in the templates.

tests/conftest.py also checks, for every test, that each HTML response the test client
receives carries the policy; tests/web/test_browser.py loads the pages in Chromium with it
and fails on any console error (a refused inline script or style is one).
"""

import re

import pytest

from tests.conftest import REPO

STRICT = {
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
}


def directives(response) -> set[str]:
    return {part.strip() for part in response["Content-Security-Policy"].split(";")}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/", "/login/", "/devices/", "/certificates/", "/federation/", "/admin/login/", "/nowhere/"],
)
def test_html_pages_carry_the_strict_policy(client, path):
    # when
    response = client.get(path)
    # then
    assert response["Content-Type"].startswith("text/html")
    assert directives(response) >= STRICT
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_json_and_plain_text_answers_carry_no_policy(client):
    assert "Content-Security-Policy" not in client.get("/api/v1/")
    assert "Content-Security-Policy" not in client.get("/healthz")


@pytest.mark.django_db
def test_the_api_docs_page_loads_its_script_as_a_file_and_allows_only_data_images(client):
    # when
    page = client.get("/api/docs/")
    script = client.get("/api/docs/?script=")
    # then: the page names its start-up script instead of inlining it
    body = page.content.decode()
    assert '<script src="/api/docs/?script="></script>' in body
    assert "<style" not in body
    assert re.search(r"<script>\s*\S", body) is None
    assert directives(page) >= STRICT
    assert "img-src 'self' data:" in directives(page)
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


@pytest.mark.django_db
def test_report_only_mode_sends_the_policy_under_the_report_only_header(client, settings):
    # given
    settings.CSP_REPORT_ONLY = True
    # when
    response = client.get("/login/")
    # then
    assert "Content-Security-Policy" not in response
    assert "frame-ancestors 'none'" in response["Content-Security-Policy-Report-Only"]


TEMPLATES = sorted(
    path
    for path in REPO.glob("*/templates/**/*.html")
    if ".venv" not in path.parts and "node_modules" not in path.parts
)
INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=", re.IGNORECASE)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(REPO)))
def test_templates_hold_no_inline_script_or_style(template):
    assert INLINE.findall(template.read_text()) == []
