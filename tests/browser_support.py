"""Real headless Chromium for the tests (Debian's chromium through chromedriver): the
dashboard's pages, and web pages that try to use the proxy."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="chromium and chromium-driver (scripts/test installs)"
)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium with a profile of its own, quit and removed at the end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="dashboard-chromium-")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: Any, script: str, timeout: float = 10.0) -> Any:
    """Run `script` until it returns something true; every 20 ms (WebDriverWait's default
    is 0.5 s, which most waits here would spend whole)."""
    from selenium.webdriver.support.ui import WebDriverWait

    waiting = WebDriverWait(driver, timeout, poll_frequency=0.02)
    return waiting.until(lambda d: d.execute_script(script))


def with_litellms_cors(upstream: Any) -> Any:
    """`upstream` answering browsers as LiteLLM 1.106.2 does by default (its
    proxy_server.py: Starlette's CORSMiddleware, every origin, method and header allowed,
    no credentials when LITELLM_CORS_ORIGINS is unset): preflights get 200 with
    `access-control-allow-origin: *` and the requested headers echoed (DESIGN.md)."""
    from starlette.middleware.cors import CORSMiddleware

    return CORSMiddleware(upstream, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"])
