"""Browser fixtures: the built page, real headless Chromium with fake devices, the original
npm client, and a relay served from an aiohttp app that tests can add pages to."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web

from desktop_relay.relay import RelayConfig, RelayServer
from desktop_relay.relay.transport.webpage import WEB_DIR

from .helpers import CHROMIUM_ARGS, Browser, file_lock, missing

if TYPE_CHECKING:
    from playwright.async_api import ViewportSize

ROOT = Path(__file__).resolve().parents[2]
WEB_SOURCES = ROOT / "resources" / "web"
ORIGINAL_CLIENT = "@api.video/browser-to-rtmp-client@0.2"


def _newest_source_mtime() -> float:
    paths = [*WEB_SOURCES.joinpath("src").rglob("*"), *WEB_SOURCES.glob("*.json")]
    paths.append(WEB_SOURCES / "build.mjs")
    return max(p.stat().st_mtime for p in paths if p.is_file())


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="session")
def built_page() -> Path:
    """The page and client built into the package; built here when missing or older than
    their sources (scripts/test.sh builds them first, so this is for a bare `pytest`)."""
    with file_lock("desktop-relay-web-build.lock"):
        index = WEB_DIR / "index.html"
        if index.is_file() and index.stat().st_mtime >= _newest_source_mtime():
            return WEB_DIR
        npm = shutil.which("npm")
        if npm is None:
            missing("npm is needed to build the page (apt-get install nodejs npm)")
        assert npm is not None
        if not (WEB_SOURCES / "node_modules").is_dir():
            _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], WEB_SOURCES)
        _run([npm, "run", "build", "--silent"], WEB_SOURCES)
    return WEB_DIR


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium; Playwright drives it, and never downloads a browser of its own."""
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        missing("chromium is not installed (apt-get install chromium)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        missing("playwright is not installed (pip install -e '.[test]')")
    return path


@pytest.fixture(scope="session")
def original_client_js(pytestconfig: pytest.Config) -> Path:
    """The original `@api.video/browser-to-rtmp-client` 0.2.x from npm, cached across runs
    (pytest's cache folder is not committed)."""
    cache: pytest.Cache | None = getattr(pytestconfig, "cache", None)  # -p no:cacheprovider
    if cache is not None:
        folder = cache.mkdir("browser-to-rtmp-client-0.2")
    else:
        folder = Path(tempfile.gettempdir()) / "desktop-relay-browser-to-rtmp-client"
    script = folder / "node_modules" / "@api.video" / "browser-to-rtmp-client" / "dist" / "index.js"
    with file_lock("desktop-relay-original-client.lock"):
        if not script.is_file():
            npm = shutil.which("npm")
            if npm is None:
                missing("npm is needed to fetch the original client (apt-get install npm)")
            assert npm is not None
            folder.mkdir(parents=True, exist_ok=True)
            # Its bundle is self-contained: no install scripts, no lock file to keep.
            _run(
                [
                    npm,
                    "install",
                    "--prefix",
                    str(folder),
                    "--no-audit",
                    "--no-fund",
                    "--ignore-scripts",
                    "--no-package-lock",
                    "--loglevel=error",
                    ORIGINAL_CLIENT,
                ],
                folder,
            )
    return script


BrowserFactory = Callable[..., Awaitable[Browser]]


@pytest.fixture
async def launch_browser(
    chromium_path: str, built_page: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[BrowserFactory]:
    """Async factory: `await launch_browser(extra_args=[...], viewport=...)` starts a fresh
    headless Chromium with a fake camera, microphone and screen, and Chromium flags added
    (for example which certificate to trust)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browsers: list[Browser] = []

        async def launch(
            extra_args: list[str] | None = None, viewport: ViewportSize | None = None
        ) -> Browser:
            context = await playwright.chromium.launch_persistent_context(
                str(tmp_path / f"chromium-profile-{len(browsers)}"),
                executable_path=chromium_path,
                headless=True,
                args=[*CHROMIUM_ARGS, *(extra_args or [])],
                viewport=viewport or {"width": 1280, "height": 800},
            )
            # The persistent context opens a blank page of its own: tests open theirs.
            for page in context.pages:
                await page.close()
            browsers.append(Browser(context))
            return browsers[-1]

        try:
            yield launch
        finally:
            report = getattr(request.node, "rep_call", None)
            for browser in browsers:
                if report is not None and report.failed:
                    for page, log in browser.logs.items():
                        print(f"--- {page.url}\n{log}")
                await browser.context.close()


@pytest.fixture
async def browser(launch_browser: BrowserFactory) -> Browser:
    """A fresh headless Chromium with a fake camera, microphone and screen."""
    return await launch_browser()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item, so fixtures know whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


AppSetup = Callable[[web.Application], None]


@pytest.fixture
async def relay_app(
    built_page: Path, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[tuple[RelayServer, str]]]]:
    """Async factory: `relay, url = await relay_app(config, setup)` serves a relay with
    `RelayServer.attach` from an aiohttp app to which `setup(app)` added routes first (same origin
    as the relay, as a page using the client from a web site would be)."""
    runners: list[tuple[RelayServer, web.AppRunner]] = []

    async def make(config: RelayConfig, setup: AppSetup | None = None) -> tuple[RelayServer, str]:
        config = replace(
            config,
            host="127.0.0.1",
            port=0,
            recordings_dir=config.recordings_dir or tmp_path / "recordings",
        )
        relay = RelayServer(config)
        app = web.Application()
        if setup is not None:
            setup(app)
        relay.attach(app)
        runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        relay.start_background()
        runners.append((relay, runner))
        port = runner.addresses[0][1]
        return relay, f"http://127.0.0.1:{port}"

    yield make
    for relay, runner in runners:
        await relay.stop()
        await runner.cleanup()
