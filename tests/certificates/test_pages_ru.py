"""The public certificate, statement and lookup pages in Russian: every word translated."""

import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from certificates import services
from ledger.services import checkpoint_create, ledger_integrate_pending
from tests.web.world import build_web_world

pytestmark = pytest.mark.django_db

# English words that only the page's own text (never the test data) would contain.
ENGLISH = re.compile(
    r"\b(the|of|and|by|to|from|account|device|bundle|units?|issued|transfer|retired|waits?|"
    r"proofs?|checkpoint|claim|volume|purpose|support|statement|verify|none|yes|no|active|"
    r"withdrawn|voluntary|download|run|look|trace|lookup|language|switch)\b",
    re.IGNORECASE,
)


class VisibleText(HTMLParser):
    """The words a reader sees (and attribute texts they hear): not code, data or scripts."""

    SKIP = {"script", "style", "code", "pre"}
    SPOKEN = ("aria-label", "title", "placeholder", "data-summary", "data-included")

    def __init__(self) -> None:
        super().__init__()
        self.depth, self.words = 0, []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.depth += 1
        self.words += [value for name, value in attrs if name in self.SPOKEN and value]

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.depth -= 1

    def handle_data(self, data):
        if not self.depth:
            self.words.append(data)


def _english_left(html: str, *, data: tuple[str, ...] = ()) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    text = " ".join(parser.words)
    for value in data:  # names the test data chose, shown as they are
        text = text.replace(value, " ")
    text = text.replace("English", " ")  # the language switch names each language in itself
    return sorted({m.group(0) for m in ENGLISH.finditer(text)})


@pytest.fixture
def russian(client):
    client.post(reverse("set_language"), {"language": "ru", "next": "/"})
    return client


@pytest.fixture
def world_with_withdrawal():
    # given: the web world, and one of the statement's certificates withdrawn since
    world = build_web_world()
    retired = world.retirement.items.first().bundle_id
    services.certificate_withdraw(
        actor=world.users["issuing_body"], bundle_ids=[retired], reason="Zählerfehler"
    )
    ledger_integrate_pending()
    checkpoint_create()
    return world


def _data(world) -> tuple[str, ...]:
    return (
        world.device.name,
        "Sunny Rooftops eG",
        "GreenBuy GmbH",
        "Bäckerei Sonnenschein",
        world.buyer_account.number,
        world.producer_account.number,
    )


def test_the_statement_reads_in_russian(russian, world_with_withdrawal):
    world = world_with_withdrawal
    # when
    response = russian.get(reverse("certificates:statement", args=[world.retirement.public_id]))
    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="ru">' in body
    for words in (
        "Заявление о погашении",  # noqa: RUF001
        "Бенефициар",
        "Добровольное заявление",
        "Проверьте сами",
        "Отозванные сертификаты.",
        "Погашено 50 Вт·ч",
    ):
        assert words in body, words
    assert _english_left(body, data=_data(world)) == []


def test_the_certificate_page_reads_in_russian(russian, world_with_withdrawal):
    world = world_with_withdrawal
    bundle = world.pending_transfer.bundle_id
    response = russian.get(reverse("certificates:certificate", args=[bundle]))
    body = response.content.decode()
    assert response.status_code == 200
    for words in ("История владения", "Атрибуты", "Выдано", "Передача №", "Сохраните"):
        assert words in body, words
    assert _english_left(body, data=_data(world)) == []


def test_the_lookup_and_its_errors_read_in_russian(russian):
    body = russian.get(reverse("certificates:lookup"), {"bundle": "999999"}).content.decode()
    assert "Пакета 999999 нет." in body
    assert _english_left(body) == []
    body = russian.get(
        reverse("certificates:lookup"), {"device": "1", "unit": "7"}
    ).content.decode()
    assert "никогда не выдавалась" in body


def test_english_stays_the_default(client):
    world = build_web_world()
    body = client.get(
        reverse("certificates:statement", args=[world.retirement.public_id])
    ).content.decode()
    assert '<html lang="en">' in body
    assert "Retirement statement" in body and "Voluntary claim" in body


def test_the_check_finds_english_left_over():
    # the check itself: an untranslated heading is caught, data and code are not
    html = "<h2>Ledger entries</h2><code>python -m ledger.verify</code><p>Rooftop 0</p>"
    assert _english_left(html, data=("Rooftop 0",)) == []
    assert _english_left("<h2>Verify it yourself</h2>") == ["Verify"]
