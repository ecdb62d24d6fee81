"""The dashboard in a real headless Chromium against a real pod and a real agent process: the
owner logs in through the pod's own login and consent pages, approves a vendor's request (the
vendor then reads with its own token) and revokes it (the vendor is refused); a form without its
CSRF token changes nothing; the spending charts load from the agent alone and their tables give
the ledger's numbers; another account that logs in is refused and sees no data.

Run on both pods, WAC and ACP: what a vendor may read after a click is the pod's answer under
each flavour's own access-control documents. Screenshots of each page at desktop and phone
widths go to build/screenshots/ (not committed), one set per flavour."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import PodEnv, RunningAgent, run_cli, start_agent, stop_agent
from vrm_agent.ledger.records import ContactUnit, Relationship, Vendor
from vrm_agent.ledger.store import Ledger
from vrm_agent.negotiation.protocol import State
from vrm_agent.pod.client import PodClient
from vrm_agent.podserver import AccountApi, CssServer, PodAccount
from vrm_agent.vendor import Inbox, IntentClient, VendorAgent, request_policy

pytestmark = pytest.mark.pod

CHROMIUM, CHROMEDRIVER = "chromium", "chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"
SIZES = {"desktop": (1280, 900), "phone": (390, 844)}
VENDOR_NAME = "Dash <b>Vendor</b> & Co"  # markup in a vendor's name must show as text
SHOP_NAME = "Dashp <i>Shop</i>"
WAIT = 30


def browser_paths() -> tuple[str, str] | None:
    chromium, driver = shutil.which(CHROMIUM), shutil.which(CHROMEDRIVER)
    return (chromium, driver) if chromium and driver else None


def install_browser() -> tuple[str, str] | None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium",
               "chromium-driver"]
    if subprocess.run(install, env=env, capture_output=True, check=False,
                      timeout=900).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False,
                       timeout=600)
        subprocess.run(install, env=env, capture_output=True, check=False, timeout=900)
    return browser_paths()


@pytest.fixture(scope="session")
def browser_binaries() -> tuple[str, str]:
    """Chromium and its driver, from the Debian packages: installed once when missing and the
    test process may (root, apt-get); otherwise the tests skip, saying why."""
    pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")
    found = browser_paths()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        # Each pytest-xdist worker asks: one installs while the other waits, then finds it.
        with open(Path(tempfile.gettempdir()) / "vrm-agent-chromium-install.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            found = browser_paths() or install_browser()
    if found is None:
        pytest.skip("no Chromium with chromedriver here, and it cannot be installed (needs "
                    "root and apt-get: apt-get install chromium chromium-driver)")
    return found


@pytest.fixture(scope="module")
def driver(browser_binaries: tuple[str, str], css_server: CssServer,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One browser per pod flavour, with its own profile: cookies name no port, so the two
    flavours' agents (and pods) on localhost must not see each other's."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager fetches nothing
    options = webdriver.ChromeOptions()
    options.binary_location = browser_binaries[0]
    profile = tmp_path_factory.mktemp("chromium-profile")
    for argument in ("--headless", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run", "--disable-quic",
                     f"--user-data-dir={profile}", "--window-size=1280,900"):
        options.add_argument(argument)
    # The network log gives the status of each page, which a browser does not show.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(browser_binaries[1]))
    browser.set_page_load_timeout(WAIT)
    browser.screenshots = SCREENSHOTS / css_server.flavour.value
    yield browser
    browser.quit()


@dataclass
class Scene:
    owner: PodAccount
    vendor: PodAccount
    other: PodAccount
    shop: PodAccount
    agent: RunningAgent
    email: str

    @property
    def dashboard(self) -> str:
        return self.agent.url + "dashboard"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def scene(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[Scene]:
    async with AccountApi(pod_env.server.base_url) as api:
        owner, vendor, other, shop = [
            await api.create_pod_account(name, f"{name}@example.org", f"secret-{name}-0123")
            for name in ("dashowner", "dashvendor", "dashother", "dashpshop")]
    async with PodClient(owner.credentials) as pod:
        ledger = Ledger(pod, owner.pod)
        email = await ledger.create(ContactUnit("email-home", "email", "owner@example.org"))
        await ledger.create(Vendor("dashvendor", VENDOR_NAME, webid=vendor.webid))
        await ledger.create(Relationship("dashvendor", "customer", person_signal=True))
        await ledger.create(Vendor("dashpshop", SHOP_NAME, webid=shop.webid))
    agent = start_agent(pod_env, tmp_path_factory.mktemp("dash-agent"), account=owner)
    yield Scene(owner, vendor, other, shop, agent, email)
    stop_agent(agent)


def wait_for(browser: Any, condition: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT).until(condition)


def open_page(browser: Any, url: str) -> None:
    """Go to ``url`` and wait until its document is loaded and has content: on a loaded
    machine the driver has been seen to answer before the page was there."""
    browser.get(url)
    wait_for(browser, lambda b: b.execute_script(
        "return document.readyState === 'complete' && "
        "document.documentElement.outerHTML.length > 100"))


def heading(browser: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(browser.find_element(By.TAG_NAME, "h1").text)


def snap(browser: Any, name: str) -> None:
    """The page as it is now, at both widths."""
    folder: Path = browser.screenshots
    folder.mkdir(parents=True, exist_ok=True)
    for label, (width, height) in SIZES.items():
        browser.set_window_size(width, height)
        browser.save_screenshot(str(folder / f"{name}-{label}.png"))
    browser.set_window_size(*SIZES["desktop"])


def log_in(browser: Any, scene: Scene, account: PodAccount, email: str) -> None:
    """Through the dashboard's login button and the pod's own login and consent pages."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shows

    browser.get(scene.dashboard)
    wait_for(browser, shows.url_contains("/dashboard/login"))
    snap(browser, "login")
    browser.find_element(By.LINK_TEXT, "Log in with your pod").click()
    wait_for(browser, shows.element_to_be_clickable((By.ID, "email")))
    browser.find_element(By.ID, "email").send_keys(email)
    browser.find_element(By.ID, "password").send_keys(f"secret-{email.split('@')[0]}-0123")
    wait_for(browser, shows.element_to_be_clickable((By.NAME, "submit"))).click()
    wait_for(browser, shows.element_to_be_clickable((By.ID, "authorize"))).click()
    wait_for(browser, shows.url_contains(scene.agent.url + "dashboard"))
    wait_for(browser, shows.presence_of_element_located((By.TAG_NAME, "h1")))


def statuses(browser: Any, path: str) -> list[int]:
    """The status of each document the browser loaded from ``path`` since the last call."""
    found = []
    for entry in browser.get_log("performance"):
        event = json.loads(entry["message"])["message"]
        if event.get("method") != "Network.responseReceived":
            continue
        response = event["params"]["response"]
        if event["params"].get("type") == "Document" and path in response["url"]:
            found.append(int(response["status"]))
    return found


def press(browser: Any, text: str, within: str = "") -> None:
    """Press a form's button and wait until the page it was on has been replaced, so what is
    looked at next is the answer (every button of the dashboard sends a form)."""
    from selenium.common.exceptions import WebDriverException

    page = browser.find_element("tag name", "html")
    browser.find_element("xpath", f"{within}//button[normalize-space()='{text}']").click()

    def replaced(_: Any) -> bool:
        try:
            page.is_enabled()
        except WebDriverException:  # stale; mid-navigation Chromium says "not in the document"
            return True
        return False

    wait_for(browser, replaced)


def flash(browser: Any) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shows

    return str(wait_for(browser, shows.presence_of_element_located(
        (By.CSS_SELECTOR, "[role=status]"))).text)


def submit(browser: Any, text: str, within: str = "") -> str:
    """Press a form's button and wait for the message of the page that answers (not the one
    of the page the button was on)."""
    press(browser, text, within)
    return flash(browser)


def post_without_csrf(browser: Any, url: str, form: dict[str, str]) -> int:
    """A form sent with the browser's session cookie and no CSRF token, as another site's
    page could try."""
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in browser.get_cookies())
    sent = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(),
                                  headers={"Cookie": cookie}, method="POST")
    try:
        with urllib.request.urlopen(sent, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


async def test_the_owner_logs_in_through_the_pod_and_sees_the_relationships(
        scene: Scene, driver: Any) -> None:
    log_in(driver, scene, scene.owner, "dashowner@example.org")
    assert heading(driver) == "Your relationships"
    assert "You are logged in." in flash(driver)
    page = driver.page_source
    assert VENDOR_NAME.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in page
    assert "<b>Vendor</b>" not in page  # the vendor's markup is text, not markup
    row = driver.find_element("xpath", "//tbody/tr[1]").text
    assert "customer" in row and "yes" in row
    cookie = next(c for c in driver.get_cookies() if c["name"] == "vrm_dashboard")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    snap(driver, "overview")


async def test_approving_a_request_lets_the_vendor_read_and_revoking_ends_it(
        scene: Scene, driver: Any) -> None:
    async with PodClient(scene.vendor.credentials) as pod:
        vendor = VendorAgent(pod)
        agent = await vendor.discover(scene.owner.webid)
        view = await vendor.request(agent, request_policy(
            ["pd:EmailAddress"], purpose="dpv:ResearchAndDevelopment",
            duration=timedelta(days=3)))
        assert view.state is State.REQUESTED and view.awaiting_person
        assert (await vendor.read(scene.email)).status == 403
        open_page(driver, scene.dashboard + "/requests")
        assert heading(driver) == "Requests waiting for you"
        # In plain words, with the exact terms beside them.
        asked = driver.find_element("css selector", "section.card li").text
        assert "your email address for research and development, for 3 days" in asked
        assert "pd:EmailAddress" in asked and "P3D" in asked
        box = driver.find_element("css selector", f"input[name=only][value='{scene.email}']")
        assert box.is_selected()
        snap(driver, "requests")
        press(driver, "Approve")
        assert "Agreed with Dash <b>Vendor</b> & Co" in flash(driver)
        assert (await vendor.status(view)).state is State.AGREED
        assert (await vendor.read(scene.email)).status == 200
        open_page(driver, scene.dashboard + "/grants")
        assert scene.email in driver.page_source
        snap(driver, "grants")
        press(driver, "Revoke")
        assert "Revoked" in flash(driver)
        assert (await vendor.read(scene.email)).status == 403
        assert (await vendor.status(view)).state is State.TERMINATED


async def test_a_request_made_elsewhere_appears_on_the_open_page_without_a_reload(
        scene: Scene, driver: Any) -> None:
    open_page(driver, scene.dashboard + "/requests")
    driver.execute_script("window.notReloaded = true;")
    async with PodClient(scene.vendor.credentials) as pod:
        vendor = VendorAgent(pod)
        view = await vendor.request(await vendor.discover(scene.owner.webid), request_policy(
            ["pd:EmailAddress"], purpose="dpv:ResearchAndDevelopment"))
        negotiation_id = view.url.rsplit("/", 1)[-1]
        wait_for(driver, lambda d: negotiation_id in d.find_element("id", "live").text)
        assert driver.execute_script("return window.notReloaded === true")
        driver.find_element("id", f"reason-{negotiation_id}").send_keys("not now")
        assert "Declined the request" in submit(driver, "Deny")
        assert (await vendor.status(view)).state is State.TERMINATED
    version = f"{scene.dashboard}/version/requests"
    assert len(fetch(driver, version, with_session=True)[2]) == 16
    with pytest.raises(urllib.error.HTTPError, match="403"):
        fetch(driver, version, with_session=False)


async def test_a_form_without_its_csrf_token_changes_nothing(scene: Scene, driver: Any) -> None:
    async with PodClient(scene.vendor.credentials) as pod:
        vendor = VendorAgent(pod)
        view = await vendor.request(await vendor.discover(scene.owner.webid), request_policy(
            ["pd:EmailAddress"], purpose="dpv:ResearchAndDevelopment"))
        negotiation_id = view.url.rsplit("/", 1)[-1]
        deny = f"{scene.dashboard}/requests/{negotiation_id}/deny"
        assert post_without_csrf(driver, deny, {"reason": "forged"}) == 403
        assert post_without_csrf(driver, deny, {"reason": "forged", "csrf": "guess"}) == 403
        assert (await vendor.status(view)).state is State.REQUESTED
        open_page(driver, scene.dashboard + "/requests")  # the session survived, the request waits
        assert negotiation_id in driver.page_source
        driver.find_element("id", f"reason-{negotiation_id}").send_keys("not for research")
        press(driver, "Deny")
        assert "Declined the request" in flash(driver)
        assert (await vendor.status(view)).state is State.TERMINATED


def post_with_session(browser: Any, url: str, form: dict[str, str]) -> tuple[int, str]:
    """A form sent as the dashboard's own would be (session cookie and CSRF token), with
    values the page never offers; the redirect back is followed."""
    from selenium.webdriver.common.by import By

    csrf = browser.find_element(By.NAME, "csrf").get_attribute("value")
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in browser.get_cookies())
    sent = urllib.request.Request(url, data=urllib.parse.urlencode(
        {**form, "csrf": csrf}).encode(), headers={"Cookie": cookie}, method="POST")
    try:
        with urllib.request.urlopen(sent, timeout=10) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as refused:
        return int(refused.code), refused.read().decode()


async def test_bad_input_gets_a_message_and_never_an_error_page(scene: Scene,
                                                                 driver: Any) -> None:
    open_page(driver, scene.dashboard + "/requests")
    unknown = f"{scene.dashboard}/requests/0123456789abcdef/approve"
    status, page = post_with_session(driver, unknown, {"only": scene.email})
    assert status == 200 and "Not approved: no negotiation 0123456789abcdef" in page
    status, page = post_with_session(driver, unknown, {})
    assert status == 200 and "Choose at least one thing to share" in page
    status, page = post_with_session(driver, f"{scene.dashboard}/requests/..%2F..%2F/deny",
                                     {"reason": "x"})
    assert status in (200, 404) and "Traceback" not in page
    status, page = post_with_session(driver, f"{scene.dashboard}/grants/no-such-grant/revoke",
                                     {})
    assert status == 200 and "no longer in force" in page
    status, page = post_with_session(driver, f"{scene.dashboard}/requests/0123456789abcdef/deny",
                                     {"reason": "\u202e" * 600})
    assert status == 200 and "shorten it" in page
    open_page(driver, scene.dashboard + "/callback?state=forged&code=stolen")
    assert heading(driver) == "The login did not work"
    open_page(driver, scene.dashboard + "/callback")
    assert heading(driver) == "The login did not work"
    open_page(driver, scene.dashboard + "/requests")  # a forged callback does not end the session
    assert heading(driver) == "Requests waiting for you"


async def test_changing_the_address_on_its_page_tells_the_vendor_that_shares_it(
        scene: Scene, driver: Any) -> None:
    inbox = Inbox()
    await inbox.start()
    try:
        async with PodClient(scene.shop.credentials) as pod:
            vendor = VendorAgent(pod, inbox=inbox)
            view = await vendor.request(await vendor.discover(scene.owner.webid), request_policy(
                ["pd:EmailAddress"], purpose="dpv:DeliveryOfGoods", duration=timedelta(days=7)))
            assert view.state is State.AGREED, view.document  # the starter terms agree
            await vendor.verify(view)
            open_page(driver, scene.dashboard + "/contact")
            assert heading(driver) == "Your contact data"
            field = driver.find_element("id", "value-1-email-home")
            assert field.get_attribute("value") == "owner@example.org"
            field.clear()
            field.send_keys("moved@example.org")
            # In a thread, up to the page that answers: the vendor's inbox answers the agent
            # on this test's event loop meanwhile.
            said = await asyncio.to_thread(submit, driver, "Save and tell vendors")
            assert "1 vendor(s) with an agreement sharing it were told" in said
            told = await inbox.wait_for(lambda n: n.type == "DataChangedMessage")
            assert told.document["resource"] == [scene.email]
            assert told.negotiation == view.url
            read = await vendor.read(scene.email)
            assert read.status == 200 and "moved@example.org" in read.text()
            row = driver.find_element("xpath", "//caption/ancestor::table//tbody/tr[1]").text
            assert "delivered" in row
            page = driver.page_source
            assert "Dashp &lt;i&gt;Shop&lt;/i&gt;" in page and "<i>Shop</i>" not in page
            snap(driver, "contact")
            contact = f"{scene.dashboard}/contact/email-home/change"
            for form, said in (({"value": " "}, "the new value is empty"),
                               ({"value": "x" * 400}, "shorten it"),
                               ({"value": "moved@example.org"}, "nothing was changed")):
                status, answer = post_with_session(driver, contact, form)
                assert status == 200 and said in answer, answer
            status, answer = post_with_session(
                driver, f"{scene.dashboard}/contact/no-such-unit/change", {"value": "a"})
            assert status == 200 and "Not changed" in answer and "Traceback" not in answer
    finally:
        await inbox.stop()


# The routes anyone may open: logging in, the Client ID document, the style sheet and script.
OPEN_ROUTES = {"/login", "/login/start", "/callback", "/client-id", "/static/{name}"}


def without_redirects(browser: Any, method: str, url: str) -> tuple[int, str | None, str]:
    """A request with the browser's cookies (a form with no fields), its redirect not
    followed: status, where it redirects to, body."""
    class Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    cookie = "; ".join(f"{c['name']}={c['value']}" for c in browser.get_cookies())
    sent = urllib.request.Request(url, data=b"" if method == "POST" else None,
                                  headers={"Cookie": cookie}, method=method)
    try:
        with urllib.request.build_opener(Stay).open(sent, timeout=10) as answer:
            return int(answer.status), answer.headers.get("Location"), answer.read().decode()
    except urllib.error.HTTPError as answer:
        return int(answer.code), answer.headers.get("Location"), answer.read().decode()


def fetch(browser: Any, url: str, *, with_session: bool) -> tuple[int, str, str]:
    """A GET with the browser's cookies or none: status, content type and body."""
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in browser.get_cookies())
    sent = urllib.request.Request(url, headers={"Cookie": cookie} if with_session else {})
    with urllib.request.urlopen(sent, timeout=10) as answer:
        return int(answer.status), answer.headers["Content-Type"], answer.read().decode()


async def test_who_holds_what_names_the_vendor_the_data_and_the_signed_agreement(
        scene: Scene, driver: Any) -> None:
    open_page(driver, scene.dashboard + "/holdings")
    assert heading(driver) == "Who holds what"
    row = driver.find_element("xpath", "//tbody/tr[contains(., 'Dashp')]").text
    assert "Dashp <i>Shop</i>" in row and "email address" in row and scene.email in row
    assert "<i>Shop</i>" not in driver.page_source
    snap(driver, "holdings")
    url = driver.find_element("partial link text", "Signed agreement").get_attribute("href")
    status, kind, body = fetch(driver, url, with_session=True)
    assert status == 200 and kind.startswith("text/turtle") and "AgreementRecord" in body
    status, kind, body = fetch(driver, url, with_session=False)  # sent to log in, no data
    assert "Log in to your dashboard" in body and "AgreementRecord" not in body
    open_page(driver, scene.dashboard + "/agreements/0123456789abcdef")
    assert heading(driver) == "No such agreement"


async def roster_names(scene: Scene) -> list[str]:
    from vrm_agent.ledger.terms import TermsStore

    async with PodClient(scene.owner.credentials) as pod:
        return await TermsStore(Ledger(pod, scene.owner.pod), scene.owner.webid).slugs() or []


async def test_a_roster_term_is_switched_off_and_on_again(scene: Scene, driver: Any) -> None:
    open_page(driver, scene.dashboard + "/terms")
    assert heading(driver) == "Your terms"
    assert "Vendors may not use your data for marketing" in driver.page_source
    snap(driver, "terms")
    section = "//section[@aria-labelledby='term-no-marketing']"
    assert "On." in driver.find_element("xpath", section).text
    assert "Switched off: no-marketing" in submit(driver, "Switch off", section)
    assert "no-marketing" not in await roster_names(scene)
    assert "Off." in driver.find_element("xpath", section).text
    assert "Switched on: No marketing" in submit(driver, "Switch on", section)
    assert "no-marketing" in await roster_names(scene)
    status, answer = post_with_session(driver, f"{scene.dashboard}/terms/nonsense/switch",
                                       {"switch": "off"})
    assert status == 200 and "not one of the starter terms" in answer


async def test_the_audit_log_is_a_timeline_newest_first_with_filters(scene: Scene,
                                                                     driver: Any) -> None:
    from selenium.webdriver.support.ui import Select

    open_page(driver, scene.dashboard + "/audit")
    assert heading(driver) == "What happened"
    times = [t.get_attribute("datetime") for t in driver.find_elements("css selector",
                                                                       ".timeline time")]
    assert len(times) >= 3 and times == sorted(times, reverse=True)
    Select(driver.find_element("id", "audit-vendor")).select_by_value(scene.shop.webid)
    press(driver, "Show")
    events = driver.find_elements("css selector", ".timeline li.card")
    assert events and all("Dashp <i>Shop</i>" in e.text for e in events)  # shown as text
    assert "<i>Shop</i>" not in driver.page_source
    snap(driver, "audit")
    open_page(driver, scene.dashboard + "/audit?type=DataChanged")
    assert [e.text.split(" ")[0] for e in driver.find_elements(
        "css selector", ".timeline li.card")] == ["DataChanged"]
    open_page(driver, scene.dashboard + "/audit?from=2001-01-01&type=%3Cscript%3E")
    assert "choose a shorter range" in driver.find_element("css selector", "[role=alert]").text


PURCHASES = (  # date, vendor, what, amount, currency, category
    ("2025-11-03", VENDOR_NAME, "lamp", "40.00", "EUR", "home"),
    ("2025-12-14", "Dashs Books", "novel", "12.50", "EUR", "books"),
    ("2025-12-20", "Dashs Books", "atlas", "30.00", "EUR", "books"),
    ("2026-01-08", "Dashs Diner", "lunch", "9.90", "USD", "food"),
    ("2026-01-09", "Dashs Books", "novel returned", "-12.50", "EUR", "books"))
# What `vrm-agent stats` says of them, per grouping and currency: (key, purchases, total).
SPENT = {
    ("month", "EUR"): [("2025-11", "1", "40.00"), ("2025-12", "2", "42.50"),
                       ("2026-01", "1", "-12.50")],
    ("month", "USD"): [("2026-01", "1", "9.90")],
    ("vendor", "EUR"): [(VENDOR_NAME, "1", "40.00"), ("Dashs Books", "3", "30.00")],
    ("vendor", "USD"): [("Dashs Diner", "1", "9.90")],
    ("category", "EUR"): [("home", "1", "40.00"), ("books", "3", "30.00")],
    ("category", "USD"): [("food", "1", "9.90")]}


def requested_urls(browser: Any) -> list[str]:
    """Every URL the browser asked for since the performance log was last read."""
    return [event["params"]["request"]["url"]
            for entry in browser.get_log("performance")
            if (event := json.loads(entry["message"])["message"]).get("method")
            == "Network.requestWillBeSent"]


async def test_spending_is_charted_and_tabled_per_currency_with_the_paychoice_ledger(
        scene: Scene, driver: Any) -> None:
    from datetime import date
    from decimal import Decimal

    from vrm_agent.ledger.importing import TransactionImporter
    from vrm_agent.ledger.paychoice import PaymentIntention, Recipient, VoluntaryPayment
    from vrm_agent.ledger.stats import ledger_spending_by
    from vrm_agent.ledger.transactions import parse_rows

    fields = ("date", "vendor", "description", "amount", "currency", "category")
    async with PodClient(scene.owner.credentials) as pod:
        ledger = Ledger(pod, scene.owner.pod)
        await TransactionImporter(ledger).run(parse_rows(
            [(2 + n, dict(zip(fields, row, strict=True))) for n, row in enumerate(PURCHASES)]
        ).transactions, digest="dashs-bank")
        await ledger.create(VoluntaryPayment(
            "dashs-paid", Recipient(name="Dashs <em>Podcast</em>"), Decimal("5"), "EUR",
            date(2026, 1, 2), purpose="episode 12"))
        await ledger.create(PaymentIntention(
            "dashs-intend", Recipient(vendor_id="dashvendor"), Decimal("3.50"), "USD",
            date(2026, 2, 1), "P1M", purpose="keep it going"))
        totals = await ledger_spending_by(ledger)
        (paid,), (intended,) = (await ledger.list(VoluntaryPayment),
                                await ledger.list(PaymentIntention))
    # The expected numbers are the ledger's, as `vrm-agent stats` computes them.
    assert {(by, r.currency) for by, rows in totals.items() for r in rows} == set(SPENT)
    for (by, currency), expected in SPENT.items():
        assert [(r.key, str(r.count), str(r.total)) for r in totals[by]
                if r.currency == currency] == expected
    requested_urls(driver)  # forget what earlier pages asked for
    open_page(driver, scene.dashboard + "/spending")
    assert heading(driver) == "Your spending"
    images = wait_for(driver, lambda d: (found := d.execute_script(
        "const i = Array.from(document.images);"
        "return i.every(x => x.complete) ? i.map(x => [x.src, x.naturalWidth, x.alt]) : null"))
        and found)
    assert len(images) == len(SPENT)
    assert all(width > 0 for _, width, _ in images), images  # each chart was drawn
    assert all("the table below gives the numbers" in alt for _, _, alt in images)
    shown = {}
    for table in driver.find_elements("css selector", "table[id^=table-]"):
        by = table.get_attribute("id").split("-")[1]
        currency = table.find_element("tag name", "caption").text.split(" in ")[1][:3]
        shown[(by, currency)] = [tuple(cell.text for cell in row.find_elements(
            "xpath", "./th|./td")) for row in table.find_elements("css selector", "tbody tr")]
    assert shown == SPENT
    payment = driver.find_element("css selector", "#payments tbody tr").text
    # The amount as the ledger reads it back (the pod may write 5 as 5.0).
    assert paid.amount == Decimal("5") and intended.amount == Decimal("3.50")
    assert payment == f"Dashs <em>Podcast</em> {paid.amount} EUR 2026-01-02 episode 12"
    intention = driver.find_element("css selector", "#intentions-table tbody tr").text
    assert intention == (f"{VENDOR_NAME} {intended.amount} USD monthly from 2026-02-01 "
                         "keep it going")
    page = driver.page_source
    assert "<em>Podcast</em>" not in page and "<b>Vendor</b>" not in page
    outside = [u for u in requested_urls(driver)
               if urllib.parse.urlsplit(u).hostname not in ("localhost", "127.0.0.1")]
    assert outside == []  # nothing fetched from anywhere else
    snap(driver, "spending")
    chart = next(src for src, _, _ in images if "/charts/vendor/EUR.svg" in src)
    status, kind, body = fetch(driver, chart, with_session=True)
    assert status == 200 and kind == "image/svg+xml" and "<script" not in body
    assert "Dash &lt;b&gt;Vendor&lt;/b&gt; &amp; Co" in body and "<b>" not in body
    with pytest.raises(urllib.error.HTTPError, match="403"):
        fetch(driver, chart, with_session=False)
    # Opened by itself, the chart's own inline style applies under its policy, and no script.
    open_page(driver, chart)
    fill = driver.execute_script(
        "return getComputedStyle(document.querySelector('.plot > .background')).fill")
    assert fill == "rgb(255, 255, 255)"
    assert driver.execute_script("return document.scripts.length") == 0


async def put_out_intent(scene: Scene, what: str, budget: str) -> dict[str, Any]:
    """The owner's intent, put out with the real command (in a thread: the vendors' inboxes on
    this test's loop answer the agent meanwhile)."""
    added = await asyncio.to_thread(run_cli, "intent", "add", what, "--budget", budget,
                                    "--currency", "EUR", "--public", "--json", "--config",
                                    str(scene.agent.config))
    assert added.returncode == 0, added.stderr
    return json.loads(added.stdout)  # type: ignore[no-any-return]


async def offer_to(intents: IntentClient, agent: Any, resource: str, price: str,
                   description: str) -> dict[str, Any]:
    """An offer once the agent lists the intent (its listing may lag a new one by 2 s)."""
    for _ in range(50):
        entry = next((e for e in await intents.list(agent) if e.intent == resource), None)
        if entry is not None:
            seen = await intents.read(entry)  # from the pod, with the vendor's own token
            return await intents.offer(entry, price=price, currency="EUR", terms=seen.terms,
                                       availability="schema:InStock", description=description)
        await asyncio.sleep(0.2)
    raise AssertionError(f"the agent never listed {resource}")


async def test_offers_to_an_intent_are_compared_and_one_is_accepted_on_the_page(
        scene: Scene, driver: Any) -> None:
    wanted = await put_out_intent(scene, "a cargo bike", "3000")
    async with contextlib.AsyncExitStack() as stack:
        sellers = {}
        for account, price in ((scene.vendor, "2750"), (scene.shop, "2499.5")):
            inbox = await stack.enter_async_context(Inbox())
            pod = await stack.enter_async_context(PodClient(account.credentials))
            vendor = VendorAgent(pod, inbox=inbox)
            intents = IntentClient(vendor)
            view = await offer_to(intents, await vendor.discover(scene.owner.webid),
                                  wanted["resource"], price, f"<b>{account.webid}</b>'s bike")
            sellers[account.webid] = (vendor, inbox, view)
        open_page(driver, scene.dashboard + "/intents")
        assert heading(driver) == "Your intents and their offers"
        card = "//section[.//h2[normalize-space()='a cargo bike']]"
        rows = [r.text for r in driver.find_elements("xpath", f"{card}//tbody/tr")]
        assert len(rows) == 2
        assert rows[0].startswith("Dashp <i>Shop</i>") and "2499.50 EUR" in rows[0]
        assert rows[1].startswith("Dash <b>Vendor</b> & Co") and "2750.00 EUR" in rows[1]
        assert "<i>Shop</i>" not in driver.page_source and "<b>http" not in driver.page_source
        assert "everyone" in driver.find_element("xpath", card).text
        snap(driver, "intents")
        said = await asyncio.to_thread(submit, driver, "Accept",
                                       f"{card}//tr[contains(., 'Dashp')]")
        assert "Accepted Dashp <i>Shop</i>'s offer of 2499.50 EUR for a cargo bike" in said
        assert "1 other vendor(s) that offered are being told" in said
        shop, shop_inbox, shop_view = sellers[scene.shop.webid]
        won = await shop_inbox.wait_for(lambda n: n.type == "OfferAcceptedMessage")
        assert won.negotiation == shop_view["id"]
        _, vendor_inbox, vendor_view = sellers[scene.vendor.webid]
        told = await vendor_inbox.wait_for(lambda n: n.type == "IntentClosedMessage")
        assert told.negotiation == vendor_view["id"]
        assert not [n for n in vendor_inbox.received if n.type == "OfferAcceptedMessage"]
        assert (await shop.read(wanted["resource"])).status == 403  # closed: nobody reads it
    accepted = driver.find_element("xpath", f"{card}//tr[contains(@class, 'accepted')]").text
    assert accepted.startswith("Dashp <i>Shop</i> (accepted)")
    assert not driver.find_elements("xpath", f"{card}//button")  # closed: no decision left
    snap(driver, "intents-accepted")
    link = driver.find_element("xpath", f"{card}//a[contains(., 'Signed agreement')]")
    url = link.get_attribute("href")
    assert url.endswith(f"/dashboard/agreements/intent-{wanted['id']}")
    status, kind, body = fetch(driver, url, with_session=True)
    assert status == 200 and kind.startswith("text/turtle") and "AgreementRecord" in body
    assert scene.shop.webid in body

    base = f"{scene.dashboard}/intents/{wanted['id']}"
    for path, said in ((f"{base}/offers/{shop_view['id'].rsplit('/', 1)[-1]}/accept",
                        "Not accepted: the intent is closed already"),
                       (f"{base}/close", "Not closed: the intent is closed already"),
                       (f"{scene.dashboard}/intents/no-such-intent/close",
                        "Not closed: that intent is not one of yours"),
                       (f"{scene.dashboard}/intents/.acl/offers/x/accept",
                        "Not accepted: that intent is not one of yours"),
                       (f"{base}/offers/a%20b/accept", "Not accepted: that offer")):
        status, answer = post_with_session(driver, path, {})
        assert status == 200 and said in answer and "Traceback" not in answer, (path, answer)

    # Put out on the page, for one vendor of the ledger only; then closed on the page.
    driver.find_element("id", "intent-what").send_keys("a second-hand trailer")
    driver.find_element("id", "intent-budget").send_keys("200")
    driver.find_element("id", "audience-chosen").click()
    driver.find_element("css selector", f"input[name=vendor][value='{scene.vendor.webid}']"
                        ).click()
    said = submit(driver, "Put it out")
    assert "Put out your intent for a second-hand trailer, at most 200.00 EUR" in said
    assert "Who may read it: Dash <b>Vendor</b> & Co." in said
    trailer = "//section[.//h2[normalize-space()='a second-hand trailer']]"
    assert "open, taking offers" in driver.find_element("xpath", trailer).text
    trailer_id = driver.find_element("xpath", f"{trailer}//dd/span[@class='iri']").text
    resource = f"{scene.owner.pod}vrm/intents/{trailer_id}"
    async with PodClient(scene.vendor.credentials) as chosen, \
            PodClient(scene.shop.credentials) as not_chosen:
        assert (await VendorAgent(chosen).read(resource)).status == 200
        assert (await VendorAgent(not_chosen).read(resource)).status == 403
        said = submit(driver, "Close without accepting", trailer)
        assert "Closed your intent for a second-hand trailer" in said and "no vendor had" in said
        assert (await VendorAgent(chosen).read(resource)).status == 403
    status, answer = post_with_session(driver, f"{scene.dashboard}/intents",
                                       {"what": "x", "budget": "1e9", "currency": "EUR",
                                        "audience": "public"})
    assert status == 200 and "Not put out: the budget" in answer and "not an amount" in answer


# Checked on every page the owner sees, in the browser's own document: what a screen reader
# and a keyboard need. Each entry names what is wrong; an empty list is a page that passes.
ACCESSIBILITY = """
const problems = [];
const named = (el) => (el.labels && el.labels.length) || el.getAttribute('aria-label')
    || el.getAttribute('aria-labelledby') || el.closest('label');
if (!document.documentElement.lang) problems.push('no lang on <html>');
if (!document.title.trim()) problems.push('no title');
if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
if (!document.querySelector('main')) problems.push('no <main> landmark');
for (const el of document.querySelectorAll(
        'input:not([type=hidden]), select, textarea')) {
  if (!named(el)) problems.push('unlabelled ' + el.tagName + ' ' + (el.name || el.id));
}
for (const el of document.querySelectorAll('button, a[href]')) {
  if (!(el.textContent.trim() || el.getAttribute('aria-label')))
    problems.push('nameless ' + el.tagName);
}
for (const img of document.images) {
  if (!img.hasAttribute('alt')) problems.push('image without alt ' + img.src);
}
for (const table of document.querySelectorAll('table')) {
  if (!table.querySelector('caption')) problems.push('table without caption');
  if (!table.querySelector('th')) problems.push('table without headers');
}
const ids = Array.from(document.querySelectorAll('[id]'), (el) => el.id);
const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
if (twice.length) problems.push('ids used twice: ' + twice.join(' '));
return problems;
"""


async def test_every_page_has_labels_landmarks_and_a_keyboard_way_in(scene: Scene,
                                                                    driver: Any) -> None:
    from selenium.webdriver.common.keys import Keys

    from vrm_agent.dashboard import ROUTES

    pages = sorted({path for method, path, _ in ROUTES
                    if method == "GET" and path and "{" not in path
                    and path not in OPEN_ROUTES | {"/"}})
    assert {"/requests", "/intents", "/spending", "/terms"} <= set(pages)
    found = {}
    for page in ["/", *pages]:
        open_page(driver, scene.dashboard + page)
        if problems := driver.execute_script(ACCESSIBILITY):
            found[page] = problems
        # The first Tab reaches the skip link, which leads to the page's content.
        driver.find_element("tag name", "body").send_keys(Keys.TAB)
        first = driver.switch_to.active_element
        assert first.text == "Skip to the content", page
        first.send_keys(Keys.ENTER)
        assert driver.execute_script("return document.activeElement.id") == "main", page
    assert found == {}, found


async def test_another_account_is_refused_and_sees_no_data(scene: Scene, driver: Any) -> None:
    open_page(driver, scene.dashboard)
    press(driver, "Log out")
    assert heading(driver) == "Log in to your dashboard"
    open_page(driver, scene.dashboard + "/grants")
    assert heading(driver) == "Log in to your dashboard"  # logged out: no page without a login
    driver.delete_all_cookies()  # the pod would remember the owner's login
    statuses(driver, "/dashboard/callback")  # forget what came before
    log_in(driver, scene, scene.other, "dashother@example.org")
    assert heading(driver) == "This dashboard is not yours"
    assert statuses(driver, "/dashboard/callback") == [403]
    assert scene.other.webid in driver.page_source
    for secret in ("Dash", scene.email, scene.vendor.webid):
        assert secret not in driver.page_source
    assert not [c for c in driver.get_cookies() if c["name"] == "vrm_dashboard"]
    snap(driver, "refused")
    for page in ("", "/requests", "/grants", "/contact", "/terms", "/audit", "/intents",
                 "/holdings", "/agreements/0123456789abcdef", "/agreements/intent-x",
                 "/spending"):
        open_page(driver, scene.dashboard + page)
        assert heading(driver) == "Log in to your dashboard"
    # Every route of the dashboard, with this browser's cookies, the ids real where there are
    # real ones: a page sends it to log in, a form, an image or a tag is refused, none shows
    # or changes anything.
    from vrm_agent.dashboard import ROUTES

    listed = await asyncio.to_thread(run_cli, "grants", "--json", "--config",
                                     str(scene.agent.config))
    grants = [g["id"] for g in json.loads(listed.stdout)]
    assert grants, "the sweep needs a grant in force to try revoking"
    ids = {"id": grants[0], "name": "sd-base", "list": "grants", "offer": "y", "by": "vendor",
           "currency": "EUR"}
    for method, path, _ in ROUTES:
        if path in OPEN_ROUTES:
            continue
        url = scene.dashboard + path.format(**ids)
        status, where, body = without_redirects(driver, method, url)
        assert (status, where) in ((303, "/dashboard/login"), (403, None)), (method, path)
        for secret in ("Dash", scene.email, scene.vendor.webid, grants[0]):
            assert secret not in body, (method, path)
    again = await asyncio.to_thread(run_cli, "grants", "--json", "--config",
                                    str(scene.agent.config))
    assert [g["id"] for g in json.loads(again.stdout)] == grants  # nothing was revoked
