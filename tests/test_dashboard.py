"""The dashboard in a real browser: Debian's Chromium driven by Playwright against the real `evo serve`.

Signs in, submits a run through the form (and sees a bad one's one-line
error), watches the curve grow, stops and resumes the run, opens the compare
page, and saves screenshots (wide 1280x800 and narrow) in tests/artifacts/.
Chromium comes from the system (``.ci/run`` installs it); Playwright's own
browser downloads are never used.
"""

from __future__ import annotations

import re
import shutil
import tempfile

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.service_support import ROOT, ServiceProcess, wait_for, xor_config

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 420, "height": 800}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    proc = ServiceProcess(tmp_path_factory.mktemp("evo-home"), ["--max-concurrent", "2", "--ray-cpus", "1", "--ray-object-store-mb", "100"])
    try:
        proc.start()
        yield proc
    finally:
        proc.cleanup()


@pytest.fixture(scope="module")
def browser():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="evo-chromium-")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=ARGS, headless=True, viewport=WIDE)
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


def points(page: Page) -> int:
    return int(page.locator("#chart").get_attribute("data-points") or 0)


def test_sign_in_submit_watch_stop_resume_compare(service, browser):
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Sign in: a page without a token sends the user to the sign-in form; a wrong token is refused with the API's message.
    page.goto(service.url + "/submit")
    expect(page).to_have_url(f"{service.url}/login?next=%2Fsubmit")
    page.get_by_label("Service token").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#error")).to_contain_text("wrong bearer token")
    page.screenshot(path=ARTIFACTS / "dashboard-login.png")
    page.get_by_label("Service token").fill(service.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(service.url + "/submit")
    # Submit: a shipped config fills the form; a bad config gets the one-line error of `evo run`.
    page.get_by_label("Start from a shipped config").select_option("xor.toml")
    expect(page.get_by_label("Config (TOML)")).to_have_value(re.compile(r'type = "xor"'))
    page.get_by_label("Config (TOML)").fill('name = "bad"\n[task]\ntype = "xor"\n[strategy]\ntype = "cmaes"\npopulation = 1\n')
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#error")).to_contain_text("strategy.population")
    page.screenshot(path=ARTIFACTS / "dashboard-submit-error.png")
    toml = 'name = "live"\ngenerations = 100000\ncheckpoint_every = 10\n[network]\nhidden = [4]\n[task]\ntype = "xor"\n[strategy]\ntype = "cmaes"\npopulation = 16\n'
    page.get_by_label("Config (TOML)").fill(toml)
    page.get_by_label("Run id (optional)").fill("live-1")
    page.get_by_role("button", name="Submit").click()
    expect(page).to_have_url(service.url + "/runs/live-1")
    # The curve grows from the event stream.
    wait_for(lambda: points(page) >= 5, timeout=60, what="the curve's first points")
    first = points(page)
    wait_for(lambda: points(page) > first + 5, timeout=30, what="the curve to grow")
    expect(page.locator("#run-status")).to_have_text("running")
    page.screenshot(path=ARTIFACTS / "dashboard-run-live.png")
    # Stop, then resume: the curve goes on from where it stopped.
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#run-status")).to_have_text("stopped", timeout=30_000)
    stopped_at = points(page)
    expect(page.get_by_role("button", name="Resume")).to_be_enabled()
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#run-status")).to_have_text("running", timeout=30_000)
    wait_for(lambda: points(page) > stopped_at + 5, timeout=60, what="the resumed curve to grow")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#run-status")).to_have_text("cancelled", timeout=30_000)
    # A second, finished run, then the compare page from the runs table.
    with service.client() as client:
        client.wait(client.submit(xor_config("short", 40), run_id="short-1")["id"])
    page.goto(service.url + "/")
    expect(page.locator("#runs-table tbody tr")).to_have_count(2)
    expect(page.locator('#runs-table tr[data-id="short-1"]')).to_contain_text("succeeded")
    page.screenshot(path=ARTIFACTS / "dashboard-runs.png")
    page.get_by_label("select live (live-1)").check()
    page.get_by_label("select short (short-1)").check()
    page.get_by_role("button", name="Compare selected").click()
    expect(page).to_have_url(service.url + "/compare?ids=live-1,short-1")
    expect(page.locator("#compare-chart")).to_have_attribute("data-series", "2")
    expect(page.locator("#compare-table")).to_contain_text("best_fitness")
    page.screenshot(path=ARTIFACTS / "dashboard-compare.png", full_page=True)
    # The finished run's page: summary, test figures, the run directory's plot; at 1280x800 and in a narrow window.
    page.goto(service.url + "/runs/short-1")
    expect(page.locator("#summary")).to_contain_text("test_accuracy")
    expect(page.locator("#plots img")).to_have_count(1)
    page.screenshot(path=ARTIFACTS / "dashboard-run-finished.png", full_page=True)
    page.set_viewport_size(NARROW)
    page.reload()
    expect(page.locator("#summary")).to_contain_text("test_accuracy")
    expect(page.locator("#plots img")).to_have_count(1)
    expect(page.locator("#chart")).to_have_attribute("data-points", "40")
    assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"] + 1  # nothing overflows sideways
    page.screenshot(path=ARTIFACTS / "dashboard-run-narrow.png", full_page=True)
    assert errors == []


def test_every_control_has_a_label_and_the_api_stays_closed(service, browser):
    page = browser.new_page()
    page.goto(service.url + "/login")
    page.evaluate(f"sessionStorage.setItem('evo-token', {service.token!r})")
    for path in ("/", "/submit", "/compare", "/runs/short-1"):
        page.goto(service.url + path)
        page.wait_for_load_state("networkidle")
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea, button')].filter((el) =>
                 !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim()).map((el) => el.outerHTML)"""
        )
        assert unlabelled == [], (path, unlabelled)
    # The pages are public shells; the data behind them is not.
    assert page.request.get(service.url + "/api/runs").status == 401
    assert page.request.get(service.url + "/static/vendor/uPlot.iife.min.js").ok
