"""The web app in a real browser (Debian's Chromium driven by Playwright).

Every page for every person renders without console errors and without a request to any
host but the server; the producer, buyer, auditor and household journeys are done by
clicking; axe-core finds no serious or critical accessibility violation; a screenshot of each page
goes to .ci/screenshots/. Skipped only when /usr/bin/chromium is not installed
(`make browser` installs it; `make test` and CI run that first).
"""

import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import REPO
from tests.web.world import PASSWORD, build_web_world

CHROMIUM = Path("/usr/bin/chromium")
AXE = REPO / "web" / "static" / "web" / "vendor" / "axe.min.js"
SCREENSHOTS = REPO / ".ci" / "screenshots"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists() or shutil.which("chromium") is None,
        reason="Chromium is not installed: run `make browser` (Debian's chromium package)",
    ),
    pytest.mark.django_db(transaction=True),
]


PAGES = {
    "anonymous": ["/", "/devices/", "/login/", "/password-reset/", "/certificates/"],
    "producer": ["/producer/", "/producer/devices/new/", "/holdings/"],
    "buyer": ["/holdings/", "/market/", "/market/agents/", "/notifications/"],
    "auditor": ["/audit/", "/audit/verify/?subject={bundle}", "/audit/verify/?subject={statement}"],
    "issuing_body": ["/issuing/", "/issuing/onboarding/", "/issuing/registry/", "/audit/"],
    "household": ["/household/", "/household/consents/", "/household/sites/"],
}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the tests' own ORM calls
    # (and the database flush after each) are still plain synchronous code. Only this
    # module relaxes Django's check, until its last test has finished.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield browser
        browser.close()


class Watched:
    """A page whose console errors and off-site requests are collected."""

    def __init__(self, page, base: str):
        self.page, self.base, self.errors, self.foreign = page, base, [], []
        host = urlsplit(base).netloc
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on(
            "request",
            lambda r: (
                urlsplit(r.url).netloc not in ("", host)
                and r.url.startswith("http")
                and self.foreign.append(r.url)
            ),
        )

    def open(self, path: str):
        response = self.page.goto(self.base + path)
        assert response.status == 200, (path, response.status)
        self.page.wait_for_load_state("networkidle")
        return response

    def axe_violations(self) -> list[str]:
        # By address, as the pages' own scripts: the CSP refuses an inlined copy.
        self.page.add_script_tag(url=f"{self.base}/static/web/vendor/{AXE.name}")
        return self.page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
                .filter((v) => v.impact === "serious" || v.impact === "critical")
                .map((v) => v.id + ": " + v.nodes.map((n) => n.target.join(" ")).join(", "))"""
        )

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def watched(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = Watched(context.new_page(), live_server.url)
    yield page
    context.close()
    assert page.errors == [], "console errors"
    assert page.foreign == [], "requests to other hosts"


def log_in(watched: Watched, username: str) -> None:
    watched.open("/login/")
    watched.page.fill("#id_username", username)
    watched.page.fill("#id_password", PASSWORD)
    watched.page.click("main button[type=submit]")
    watched.page.wait_for_load_state("networkidle")


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.split("?")[0].lower()).strip("-") or "home"


@pytest.mark.parametrize("role", sorted(PAGES))
def test_every_page_renders_cleanly_and_accessibly_for_each_person(watched, role):
    # given
    world = build_web_world()
    if role != "anonymous":
        log_in(watched, world.users[role].username)
    ids = {"bundle": world.bundles[0].pk, "statement": world.retirement.public_id}
    for path in PAGES[role]:
        # when
        watched.open(path.format(**ids))
        # then
        assert watched.axe_violations() == [], path
        for canvas in watched.page.query_selector_all("canvas[data-chart]"):
            assert canvas.get_attribute("data-drawn") == "yes", path
        watched.screenshot(f"{role}-{_slug(path)}")


def test_the_dashboards_fit_a_375px_phone(browser, live_server):
    world = build_web_world()
    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = Watched(context.new_page(), live_server.url)
    log_in(page, world.users["buyer"].username)
    page.open("/holdings/")
    width = page.page.evaluate("document.documentElement.scrollWidth")
    page.screenshot("buyer-holdings-375px")
    context.close()
    assert width <= 375


def test_the_household_pages_fit_a_375px_phone(browser, live_server):
    build_web_world()
    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = Watched(context.new_page(), live_server.url)
    log_in(page, "household")
    widths = {}
    for path in ("/household/", "/household/consents/", "/household/sites/"):
        page.open(path)
        widths[path] = page.page.evaluate("document.documentElement.scrollWidth")
        page.screenshot(f"household-{_slug(path)}-375px")
    context.close()
    assert page.errors == []
    assert all(width <= 375 for width in widths.values()), widths


def test_producer_registers_a_device_and_reads_its_generation_chart(watched):
    world = build_web_world()
    log_in(watched, "producer")
    page = watched.page
    # the generation chart, switched to hourly by htmx
    with page.expect_response(lambda r: "/producer/generation/" in r.url):
        page.check("input[name=step][value=hour]")
    page.wait_for_selector("#generation canvas[data-drawn=yes]")
    labels = page.evaluate(
        "JSON.parse(document.getElementById('generation-data').textContent).labels.length"
    )
    assert labels >= 7 * 24
    # register a device by the form
    page.click("text=Register a device")
    page.fill("#id_name", "Schoolhouse PV")
    page.select_option("#id_technology_code", "T020001")
    page.select_option("#id_energy_source_code", "F01050100")
    page.fill("#id_capacity_kw", "49.5")
    page.fill("#id_commissioning_date", "2024-04-01")
    page.fill("#id_latitude", "52.1")
    page.fill("#id_longitude", "13.2")
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "Schoolhouse PV" in page.inner_text("#messages")
    assert "Schoolhouse PV" in page.inner_text("main table")
    watched.screenshot("journey-producer")
    assert world.device.name in page.inner_text("main")


def test_household_sees_its_site_grants_and_revokes_a_consent_and_reads_the_access_log(watched):
    import datetime as dt

    from consumers.models import Consent

    world = build_web_world()
    log_in(watched, "household")
    page = watched.page
    # the dashboard: the site with its metering point, and the energy chart drawn
    assert page.url.endswith("/household/")
    assert world.site.metering_point_id in page.inner_text("main")
    page.wait_for_selector("#energy canvas[data-drawn=yes]")
    with page.expect_response(lambda r: "/household/energy/" in r.url):
        page.check("input[name=step][value=hour]")
    page.wait_for_selector("#energy canvas[data-drawn=yes]")
    labels = page.evaluate(
        "JSON.parse(document.getElementById('energy-data').textContent).labels.length"
    )
    assert labels == 7 * 24
    # grant a consent by the form
    page.click("text=Who may read my data")
    page.wait_for_load_state("networkidle")
    page.select_option("#id_grantee", label="Stadtwerke Sonnenstadt")
    page.check("label:has-text('HOME-IMPORT') input")
    page.select_option("#id_purpose", "advice")
    page.select_option("#id_resolution", "daily")
    until = (dt.date.today() + dt.timedelta(days=60)).isoformat()
    page.fill("#id_valid_until", until)
    page.click("#grant-heading ~ form button[type=submit]")
    page.wait_for_load_state("networkidle")
    granted = Consent.objects.get(purpose="advice")
    assert f"Consent {granted.pk} granted to Stadtwerke Sonnenstadt." in page.inner_text(
        "#messages"
    )
    # revoke it: htmx swaps the list in place
    page.click(f"button:has-text('Revoke consent {granted.pk}')")
    page.wait_for_selector(f"#messages:has-text('Consent {granted.pk} revoked')")
    assert page.query_selector(f"button:has-text('Revoke consent {granted.pk}')") is None
    granted.refresh_from_db()
    assert granted.revoked_at is not None
    # the log of who read the data: one read granted, one refused
    log = page.inner_text("#accesses-heading ~ .table-wrap")
    assert "Stadtwerke Sonnenstadt" in log
    assert "granted" in log and "refused" in log
    assert watched.axe_violations() == []
    watched.screenshot("journey-household")


def test_household_registers_a_site_and_adds_a_meter_to_it(watched):
    from assets.models import Meter
    from consumers.metering_point import metering_point_with_check
    from consumers.models import Site, SiteMeter
    from tests.assets.factories import DeviceFactory, MeterFactory

    world = build_web_world()
    spare = MeterFactory(
        device=DeviceFactory(
            organisation=world.household.organisation,
            grid_area=world.site.grid_area,
            name="Garden meters",
        ),
        kind=Meter.Kind.CONSUMPTION,
        serial="GARDEN-1",
    )
    point = metering_point_with_check("87152099999999999")
    log_in(watched, "household")
    page = watched.page
    # from the dashboard to the sites page
    page.click("text=Register a site or add a meter")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/household/sites/")
    # register a site
    page.fill("#id_name", "Garden house")
    page.fill("#id_metering_point_id", point)
    page.select_option("#id_grid_area", str(world.site.grid_area_id))
    page.fill("#id_street", "7 Garden Path")
    page.fill("#id_postcode", "10117")
    page.fill("#id_city", "Berlin")
    page.click("button:has-text('Register the site')")
    page.wait_for_load_state("networkidle")
    assert "Site Garden house registered" in page.inner_text("#messages")
    site = Site.objects.get(metering_point_id=point)
    assert point in page.inner_text("#sites")
    # add the spare meter to it as the EV charger
    page.select_option("#id_site", str(site.pk))
    page.select_option("#id_meter", str(spare.pk))
    page.select_option("#id_role", "ev_charger")
    page.click("button:has-text('Add the meter')")
    page.wait_for_load_state("networkidle")
    assert "Meter GARDEN-1 added to Garden house as EV charger." in page.inner_text("#messages")
    assert SiteMeter.objects.get(meter=spare).site == site
    assert "EV charger: GARDEN-1" in page.inner_text("#sites")
    assert watched.axe_violations() == []
    watched.screenshot("journey-household-sites")


def test_the_language_switch_turns_the_pages_russian(watched):
    build_web_world()
    watched.open("/")
    watched.page.select_option("#language-select", "ru")
    watched.page.click("button:has-text('Switch')")
    watched.page.wait_for_load_state("networkidle")
    assert watched.page.get_attribute("html", "lang") == "ru"
    assert "Войти" in watched.page.inner_text("header")
    log_in(watched, "buyer")
    watched.open("/holdings/")
    assert "Входящие передачи ждут вашего решения" in watched.page.inner_text("main")
    assert watched.axe_violations() == []
    watched.screenshot("buyer-holdings-ru")


def test_issuing_body_rejects_a_device_and_withdraws_a_bundle(watched):
    from assets.models import Device
    from certificates.models import Bundle

    world = build_web_world()
    device = Device.objects.get(name="Barn roof")
    bundle = world.bundles[0]
    log_in(watched, world.users["issuing_body"].username)
    watched.open("/issuing/")
    page = watched.page
    # reject the submitted device with a reason: htmx swaps the queues in place
    page.fill(f"#reason-device-{device.pk}", "Capacity does not match the grid connection")
    page.click("button:has-text('Reject Barn roof')")
    page.wait_for_selector("text=No device waits.")
    assert "Device rejected" in page.inner_text("#messages")
    # withdraw a bundle, confirming the question the form asks
    page.fill("#id_bundles", str(bundle.pk))
    page.fill("#id_reason", "Meter was miscalibrated")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#withdraw-heading ~ form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "Withdrawal" in page.inner_text("#messages")
    assert "Meter was miscalibrated" in page.inner_text("#withdraw-heading ~ .table-wrap")
    watched.screenshot("journey-issuing-body")
    device.refresh_from_db()
    bundle.refresh_from_db()
    assert device.status == Device.Status.REJECTED
    assert bundle.status == Bundle.Status.WITHDRAWN


def test_issuing_body_dry_runs_a_csv_then_onboards_it(watched, tmp_path):
    from assets.models import Device, Meter
    from tests.web.test_onboarding import HEADER, _row

    world = build_web_world()
    good = HEADER + _row(world, "Field A", "CSV-A") + _row(world, "Field B", "CSV-B")
    bad = good + _row(world, "Field C", "CSV-A")  # the serial again
    log_in(watched, world.users["issuing_body"].username)
    watched.open("/issuing/")
    page = watched.page
    page.click("text=Onboard devices from CSV")
    page.wait_for_load_state("networkidle")
    # a dry run of a file with a bad row lists it, and writes nothing
    (tmp_path / "bad.csv").write_text(bad)
    page.set_input_files("#id_file", str(tmp_path / "bad.csv"))
    assert page.is_checked("#id_dry_run")
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "meter_exists" in page.inner_text("#outcome-heading ~ .table-wrap")
    assert "Dry run" in page.inner_text("#messages")
    assert not Device.objects.filter(name__startswith="Field ").exists()
    assert watched.axe_violations() == []
    # the corrected file, for real
    (tmp_path / "good.csv").write_text(good)
    page.set_input_files("#id_file", str(tmp_path / "good.csv"))
    page.uncheck("#id_dry_run")
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "2 devices registered" in page.inner_text("#messages")
    watched.screenshot("journey-issuing-body-onboarding")
    assert Meter.objects.filter(serial__in=["CSV-A", "CSV-B"]).count() == 2


def test_buyer_reads_a_notification_and_the_header_count_goes(watched):
    from notifications.services import notifications_derive_pending

    world = build_web_world()
    notifications_derive_pending()
    log_in(watched, "buyer")
    page = watched.page
    # the header counts the unread notification; its page shows it first
    assert page.inner_text("#notifications-link .badge") == "1"
    page.click("#notifications-link")
    page.wait_for_load_state("networkidle")
    assert f"Transfer {world.pending_transfer.pk} of" in page.inner_text("#notifications")
    # mark it read: htmx swaps the list and the header link in place
    page.click("button:has-text('Mark read: Incoming transfer to accept')")
    page.wait_for_selector("text=Nothing unread.")
    assert page.query_selector("#notifications-link .badge") is None
    assert "Incoming transfer to accept" in page.inner_text("#read-heading ~ ul")
    watched.screenshot("journey-buyer-notifications")


def test_the_api_docs_and_the_plain_pages_run_under_the_content_security_policy(watched):
    # given: the strict policy on every page (registry/csp.py); a refused inline script or
    # style would be a console error, which the fixture fails on
    world = build_web_world()
    # when / then: Swagger UI starts from its separate script and draws the operations
    response = watched.open("/api/docs/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    watched.page.wait_for_selector(".swagger-ui .opblock")
    for path in ("/federation/status", f"/certificates/{world.bundles[0].pk}/"):
        response = watched.open(path)
        assert "style-src 'self'" in response.headers["content-security-policy"], path
        # the stylesheet that replaced the inline <style> is applied
        margin = watched.page.evaluate("getComputedStyle(document.body).marginTop")
        assert margin != "8px", path


def test_trader_buys_on_the_market_and_cancels_a_resting_bid(watched):
    from market import services as market_services
    from tests.market.factories import MarketFactory, deposit, seller_with_bundles

    world = build_web_world()
    market = MarketFactory(code="certs-browser")
    seller = seller_with_bundles(hours=1, wh=1_000)
    market_services.order_place(
        actor=seller.user,
        market_id=market.pk,
        side="sell",
        limit_price=5_000,
        bundle_id=seller.bundles[0].pk,
    )
    deposit(world.buyer_account.organisation_id, 100_000)
    log_in(watched, "buyer")
    watched.open(f"/market/?market={market.pk}")
    page = watched.page
    # a bid at the offer's price fills at once
    page.select_option("#id_side", "buy")
    page.fill("#id_limit_price", "5000")
    page.fill("#id_quantity_wh", "1000")
    page.click("#order-heading ~ form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "1 trade(s), 1000 Wh filled" in page.inner_text("#messages")
    # a bid below every offer rests; its Cancel button removes it in place (htmx)
    page.fill("#id_limit_price", "1000")
    page.fill("#id_quantity_wh", "1000")
    page.click("#order-heading ~ form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "it rests on the book" in page.inner_text("#messages")
    page.click("button:has-text('Cancel order')")
    page.wait_for_selector("text=You have no open orders.")
    assert "cancelled" in page.inner_text("#messages")
    watched.screenshot("journey-trader-market")


def test_trader_orders_energy_for_a_delivery_slot_and_cancels_it(watched):
    from market import services as market_services
    from market.models import Order
    from tests.market.factories import EnergyMarketFactory, deposit, next_slot, trader

    world = build_web_world()
    market = EnergyMarketFactory(code="energy-browser")
    # one slot already cleared between two other parties, for the chart
    cleared = next_slot(market)
    for who, side, price in ((trader(100_000), "buy", 9_000), (trader(), "sell", 6_000)):
        market_services.order_place(
            actor=who.user,
            market_id=market.pk,
            side=side,
            limit_price=price,
            quantity_wh=1_000,
            account_id=who.account.pk,
            slot_start=cleared,
        )
    market_services.slot_clear(market_id=market.pk, slot_start=cleared, now=cleared)
    deposit(world.buyer_account.organisation_id, 100_000)
    log_in(watched, "buyer")
    watched.open(f"/market/?market={market.pk}")
    page = watched.page
    page.wait_for_selector("canvas[data-chart='clearing-chart'][data-drawn='yes']")
    # a bid for the second open slot rests until the slot clears
    page.select_option("#id_slot", index=1)
    page.select_option("#id_side", "buy")
    page.fill("#id_limit_price", "8000")
    page.fill("#id_quantity_wh", "2500")
    page.click("#slot-order-heading ~ form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "rests until the slot clears" in page.inner_text("#messages")
    order = Order.objects.get(organisation_id=world.buyer_account.organisation_id)
    assert (order.quantity_wh, order.status, order.side) == (2_500, Order.Status.OPEN, "buy")
    assert "open" in page.inner_text("#slot-orders")
    assert watched.axe_violations() == []
    # its Cancel button cancels it in place (htmx), before the gate closes
    page.click(f"button:has-text('Cancel slot order {order.pk}')")
    page.wait_for_selector("#slot-orders >> text=cancelled")
    assert "cancelled" in page.inner_text("#messages")
    watched.screenshot("journey-trader-energy-slots")
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED


def test_trader_delegates_an_agent_reads_its_decisions_and_revokes_it(watched):
    from market.agent_models import TradingAgent
    from market.agents import services as agent_services
    from tests.market.factories import EnergyMarketFactory, next_slot

    world = build_web_world()
    market = EnergyMarketFactory(code="energy-agents-browser")
    log_in(watched, "buyer")
    watched.open("/market/agents/")
    page = watched.page
    assert "No agent trades for you yet." in page.inner_text("#agents")
    # delegate: the form calls agent_delegate, as the API does
    page.select_option("#id_market", str(market.pk))
    page.fill("#id_min_sell_price", "3000")
    page.fill("#id_max_buy_price", "9000")
    page.fill("#id_reserve_wh", "500")
    page.click("#delegate-heading ~ form button[type=submit]")
    page.wait_for_load_state("networkidle")
    agent = TradingAgent.objects.get(organisation_id=world.buyer_account.organisation_id)
    assert f"Agent {agent.pk} now trades for you" in page.inner_text("#messages")
    assert "energy-agents-browser" in page.inner_text("#agents")
    assert (agent.min_sell_price, agent.max_buy_price, agent.reserve_wh) == (3_000, 9_000, 500)
    assert watched.axe_violations() == []
    # the periodic task runs it for a slot; its decision is explained on its page
    decision = agent_services.agent_run_slot(agent_id=agent.pk, slot_start=next_slot(market))
    page.click(f"a:has-text('Decisions of agent {agent.pk}')")
    page.wait_for_selector("#decisions table")
    assert decision.explanation.split(".")[0] in page.inner_text("#decisions")
    assert watched.axe_violations() == []
    watched.screenshot("journey-trader-agent-decisions")
    # revoke, after confirming; the list is swapped in place (htmx)
    page.click("a:has-text('Back to my trading agents')")
    page.wait_for_load_state("networkidle")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"button:has-text('Revoke agent {agent.pk}')")
    page.wait_for_selector("#agents >> text=revoked")
    assert f"Agent {agent.pk} revoked" in page.inner_text("#messages")
    assert page.locator(f"button:has-text('Revoke agent {agent.pk}')").count() == 0
    watched.screenshot("journey-trader-agents")
    agent.refresh_from_db()
    assert agent.status == TradingAgent.Status.REVOKED


def test_issuing_body_suspends_a_device_and_an_organisation_after_confirming(watched):
    from accounts.models import Organisation
    from assets.models import Device

    world = build_web_world()
    device, producer = world.device, world.device.organisation
    log_in(watched, world.users["issuing_body"].username)
    watched.open("/issuing/")
    page = watched.page
    page.click("text=Suspend organisations and devices")
    page.wait_for_load_state("networkidle")
    # dismissing the confirmation sends nothing
    page.fill(f"#reason-device-{device.pk}", "Meter seal broken")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click(f"button:has-text('Suspend {device.name}')")
    page.wait_for_load_state("networkidle")
    device.refresh_from_db()
    assert device.status != Device.Status.SUSPENDED
    # confirmed, the device is suspended and the list is swapped in place (htmx)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"button:has-text('Suspend {device.name}')")
    page.wait_for_selector(f"button:has-text('Reinstate {device.name}')")
    assert "Device suspended" in page.inner_text("#messages")
    assert "Meter seal broken" in page.inner_text("#registry-devices-heading ~ .table-wrap")
    # and the organisation
    page.fill(f"#reason-organisation-{producer.pk}", "Unpaid registry fees")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"button:has-text('Suspend {producer.legal_name}')")
    page.wait_for_selector(f"button:has-text('Reinstate {producer.legal_name}')")
    assert "Organisation suspended" in page.inner_text("#messages")
    assert watched.axe_violations() == []
    watched.screenshot("journey-issuing-body-suspensions")
    device.refresh_from_db()
    producer.refresh_from_db()
    assert device.status == Device.Status.SUSPENDED
    assert producer.status == Organisation.Status.SUSPENDED


def test_issuing_body_checks_then_withdraws_a_devices_certificates_for_a_period(watched):
    from django.db.models import Max, Min

    from certificates.models import Bundle

    world = build_web_world()
    bounds = Bundle.objects.filter(device=world.device).aggregate(
        start=Min("period_start"), end=Max("period_end")
    )
    log_in(watched, world.users["issuing_body"].username)
    watched.open("/issuing/")
    page = watched.page
    page.fill("#id_dw-device", str(world.device.pk))
    page.fill("#id_dw-period_start", bounds["start"].strftime("%Y-%m-%dT%H:%M"))
    page.fill("#id_dw-period_end", bounds["end"].strftime("%Y-%m-%dT%H:%M"))
    page.fill("#id_dw-reason", "Meter was miscalibrated")
    # the check lists every bundle and what would happen to it, writing nothing
    page.click("button:has-text('Check what would be withdrawn')")
    page.wait_for_load_state("networkidle")
    plan = page.inner_text("#device-plan")
    assert "would be withdrawn" in plan and "would be flagged, status kept" in plan
    assert world.buyer_account.number in plan
    assert "nothing was written" in page.inner_text("#messages")
    assert Bundle.objects.filter(device=world.device, status=Bundle.Status.ACTIVE).exists()
    assert watched.axe_violations() == []
    # the form keeps what was typed; Withdraw asks first, then does it
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Withdraw the device')")
    page.wait_for_load_state("networkidle")
    assert f"recorded for {world.device.name}" in page.inner_text("#messages")
    watched.screenshot("journey-issuing-body-device-withdrawal")
    assert not Bundle.objects.filter(device=world.device, status=Bundle.Status.ACTIVE).exists()
