"""Open built book pages in headless Chromium (Selenium + the system chromedriver)."""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

CHROME_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,900",
]


def chromium_available() -> bool:
    return bool((shutil.which("chromium") or shutil.which("chromium-browser")) and shutil.which("chromedriver"))


def check_pages(pages: list[Path]) -> dict[str, dict]:
    """Load each page; return per page the broken images and console errors."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for flag in CHROME_FLAGS:
        opts.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="ldct-chromium-")
    opts.add_argument(f"--user-data-dir={profile}")
    opts.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver")))
    report = {}
    try:
        for page in pages:
            driver.get(page.resolve().as_uri())
            for _ in range(50):  # wait for load (and lazy images after scrolling)
                if driver.execute_script("return document.readyState") == "complete":
                    break
                time.sleep(0.1)
            driver.execute_script("window.scrollTo(0, document.documentElement.scrollHeight);")
            time.sleep(0.3)
            images = driver.execute_script(
                "return Array.from(document.images).map(i => [i.currentSrc || i.src, i.complete, i.naturalWidth]);"
            )
            broken = [src for src, complete, width in images if not complete or width == 0]
            errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            title = driver.title
            math_ok = driver.execute_script("return typeof window.MathJax === 'undefined' || !!window.MathJax.startup;")
            report[str(page)] = {
                "images": len(images), "broken": broken, "errors": errors, "title": title, "mathjax": math_ok,
            }
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return report
