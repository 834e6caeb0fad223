"""The web page in a real browser: Debian's Chromium, headless, driven by Playwright.

The daemon runs with the shipped model (network + 1 s refinement, 3 candidates) and its page on
a free loopback port. The test uploads a file as a person would (the file input), sees the job
appear and finish, checks the result's players (durations), the spectrogram, a runner-up playing,
the preset download (parsed by ``preset show``), a recording from the browser's (fake)
microphone, and a bad file's error on the page. Every request the page makes must stay on this
machine. A screenshot of the result view is left in ``build/screenshots/`` for a person to look at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from click.testing import CliRunner
from daemon_helpers import write_saw

from deepdiva.cli import cli
from deepdiva.daemon.config import build_config
from deepdiva.daemon.service import Service

REPO = Path(__file__).parents[2]
SCREENSHOTS = REPO / "build" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required",
]

pytestmark = pytest.mark.browser


def _sync_playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("playwright is not installed (bash scripts/test.sh installs it)")
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            raise AssertionError("chromium is missing: scripts/test.sh installs Debian's chromium")
        pytest.skip("no chromium (apt-get install chromium)")
    return sync_playwright


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("web")
    config = build_config({}, {"osc.port": 0, "osc.tcp_port": 0, "midi.enabled": False, "drop.enabled": False,
                               "presets.folder": str(root / "presets"), "queue.journal": str(root / "journal"),
                               "model.refine_seconds": 1.0, "model.candidates": 3})
    service = Service(config).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def browser(daemon: Service):
    with _sync_playwright()() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, daemon: Service):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.requested = []  # type: ignore[attr-defined]
    page.on("request", lambda r: page.requested.append(r.url))  # type: ignore[attr-defined]
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.errors.append(str(e)))  # type: ignore[attr-defined]
    assert daemon.web is not None
    page.goto(daemon.web.url())
    yield page
    hosts = {urlparse(u).hostname for u in page.requested if not u.startswith(("blob:", "data:"))}
    assert hosts <= {"127.0.0.1"}, f"the page asked other machines: {hosts}"
    assert page.errors == [], page.errors  # type: ignore[attr-defined]
    context.close()


def media_duration(page, selector: str) -> float:
    return page.eval_on_selector(selector, """a => new Promise((resolve, reject) => {
        if (a.readyState >= 1 && isFinite(a.duration)) return resolve(a.duration);
        a.addEventListener('loadedmetadata', () => resolve(a.duration), {once: true});
        a.addEventListener('error', () => reject(new Error('audio failed: ' + a.src)), {once: true});
        a.load();
    })""")


def test_upload_listen_look_pick_download(page, daemon: Service, tmp_path: Path) -> None:
    pluck = write_saw(tmp_path / "bass pluck.wav", 110.0, 2.0, amplitude=0.5, decay=2.0)  # a bass pluck at A2
    page.set_input_files("[data-testid=file-input]", str(pluck))
    row = page.locator("[data-testid=job], [data-testid=history-item]").first
    row.wait_for(timeout=15_000)  # the job shows up in the queue (or already finished)
    result = page.locator("[data-testid=result][data-id]")
    result.wait_for(timeout=90_000)
    job_id = result.get_attribute("data-id")
    item = page.locator(f"[data-testid=history-item][data-id='{job_id}']")
    assert item.get_attribute("data-state") == "done"

    # both players load, each about as long as the matched note (2 s)
    for selector in ("[data-testid=audio-target]", "[data-testid=audio-match]"):
        assert media_duration(page, selector) == pytest.approx(2.0, abs=0.1), selector
    page.wait_for_function("""() => { const i = document.querySelector('[data-testid=spectrogram]');
                                      return i && i.complete && i.naturalWidth > 300; }""", timeout=30_000)
    assert page.locator("[data-testid=note]").inner_text().startswith("A2")
    assert page.locator("[data-testid=distance]").inner_text().strip() != ""
    assert page.locator("[data-testid=params] tr").count() >= 33

    # A/B: the target plays; the switch hands over to the match at the same moment
    page.eval_on_selector("[data-testid=audio-target]", "a => a.play()")
    page.wait_for_function("() => document.querySelector('[data-testid=audio-target]').currentTime > 0.4",
                           timeout=10_000)
    page.click("[data-testid=ab]")
    handed = page.evaluate("""() => new Promise(resolve => setTimeout(() => {
        const [a, b] = ['audio-target', 'audio-match'].map(t => document.querySelector(`[data-testid=${t}]`));
        resolve({aPaused: a.paused, bPaused: b.paused, aTime: a.currentTime, bTime: b.currentTime});
    }, 300))""")
    assert handed["aPaused"] and not handed["bPaused"], handed
    assert handed["bTime"] >= handed["aTime"] > 0.4, handed  # B went on from where A stopped
    page.click("[data-testid=ab]")

    # a runner-up plays
    candidates = page.locator("[data-testid=candidate]")
    assert candidates.count() >= 2
    second = page.locator("[data-testid=candidate][data-rank='2']")
    second.locator("[data-testid=play-candidate]").click()
    page.wait_for_function("""() => { const a = document.querySelector(
                                   "[data-testid=candidate][data-rank='2'] [data-testid=audio-candidate]");
                                   return a && !a.paused && a.currentTime > 0.1; }""", timeout=10_000)

    # the preset downloads and parses
    with page.expect_download() as download:
        page.click("[data-testid=download]")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.suffix == ".h2p"
    shown = CliRunner().invoke(cli, ["preset", "show", str(saved), "--json"])
    assert shown.exit_code == 0, shown.output
    assert page.locator("[data-testid=preset-path]").inner_text().strip().endswith(".h2p")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("[data-testid=candidate][data-rank='1']").click()
    page.wait_for_function("""() => { const i = document.querySelector('[data-testid=spectrogram]');
                                      return i && i.complete && i.naturalWidth > 300; }""", timeout=30_000)
    page.screenshot(path=str(SCREENSHOTS / "web-result.png"), full_page=True)
    page.screenshot(path=str(SCREENSHOTS / "web-result-top.png"))  # what a person sees first (README)
    print(f"screenshots of the result view: {SCREENSHOTS}/web-result.png, web-result-top.png")


def test_a_quiet_take_says_it_was_raised(page, tmp_path: Path) -> None:
    quiet = write_saw(tmp_path / "quiet.wav", 220.0, 2.0, amplitude=0.01)  # peaks at -40 dBFS
    page.set_input_files("[data-testid=file-input]", str(quiet))
    page.locator("[data-testid=result][data-id]").wait_for(timeout=90_000)
    take = page.locator("[data-testid=take]")
    assert take.is_visible()
    assert "raised 2" in take.inner_text() and "a quiet take" in take.inner_text()  # raised ~22 dB to -18 dBFS


def test_a_bad_file_shows_its_error(page, tmp_path: Path) -> None:
    bad = tmp_path / "not audio.wav"
    bad.write_text("hello, this is text\n" * 20)
    page.set_input_files("[data-testid=file-input]", str(bad))
    message = page.locator("[data-testid=message]")
    page.wait_for_function("""() => (document.querySelector('[data-testid=message]').textContent || '')
                                     .includes('not a readable audio file')""", timeout=15_000)
    assert "not audio.wav" in message.inner_text()


def test_recording_from_the_browser_microphone(page, daemon: Service) -> None:
    """Chromium's fake microphone (a beep) through getUserMedia: recorded, uploaded, matched."""
    before = daemon.status()["completed"] + daemon.status()["failed"]
    page.fill("[data-testid=record-seconds]", "1")
    page.click("[data-testid=record]")
    page.wait_for_function(f"""() => [...document.querySelectorAll('[data-testid=history-item]')]
                               .length > {before}""", timeout=90_000)
    newest = page.locator("[data-testid=history-item]").first
    assert "recording" in newest.inner_text().lower()
    assert newest.get_attribute("data-state") in ("done", "failed")


@pytest.mark.parametrize("tls", ["auto", "off"])
def test_a_phone_on_the_network_can_record_only_over_https(browser, tmp_path: Path, tls: str) -> None:
    """Opened by this machine's network address, as a phone would: over HTTPS (the default beyond
    loopback) the page is a secure context and records; over plain HTTP the browser withholds the
    microphone and the page says why instead of failing."""
    from deepdiva.daemon.web_guard import lan_address

    address = lan_address()
    if address is None or address.startswith("127."):
        pytest.skip("this machine has no network address besides loopback")
    config = build_config({}, {"osc.enabled": False, "midi.enabled": False, "drop.enabled": False,
                               "presets.folder": str(tmp_path / "presets"), "queue.journal": str(tmp_path / "journal"),
                               "web.host": "0.0.0.0", "web.tls": tls})
    service = Service(config, dry_run=True).start()
    context = browser.new_context(ignore_https_errors=True)  # self-signed: a person accepts it once
    try:
        assert service.web is not None
        url = service.web.url()
        assert url.startswith(("https://" if tls == "auto" else "http://") + address)
        page = context.new_page()
        page.goto(url)
        assert page.evaluate("window.isSecureContext") is (tls == "auto")
        if tls == "off":
            assert page.locator("[data-testid=record]").is_disabled()
            assert "HTTPS" in page.locator("#record-note").inner_text()
            return
        page.fill("[data-testid=record-seconds]", "1")
        page.click("[data-testid=record]")
        item = page.locator("[data-testid=history-item]").first
        item.wait_for(timeout=60_000)
        page.wait_for_function("""() => ['done', 'failed'].includes(
            document.querySelector('[data-testid=history-item]').dataset.state)""", timeout=60_000)
        assert "recording" in item.inner_text().lower()
    finally:
        context.close()
        service.stop()
