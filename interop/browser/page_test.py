#!/usr/bin/env python3
"""The browser page of example-app/web/ in headless Chromium (selenium + chromedriver).

    python page_test.py --gateway http://127.0.0.1:50081 [--port 8000] [--screenshot page.png]

Serves example-app/web/ (built: dist/app.js) with Python's http.server on --port, another
origin than the gateway, so every call is a CORS request; the gateway (`example-app serve
--config example-app/web/gateway.toml`) must allow http://127.0.0.1:PORT. Loads the page and
asserts what it shows: the SayHello greeting (gRPC-Web), every StreamGreetings message in
order (gRPC-Web, server streaming) and the Calculator's REST sum. Then loads the same page from
an origin the gateway does not allow (PORT + 1) and asserts that every call fails there, the
browser refusing the answers. Exit code 0 when all passed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from typing import Callable, List, Optional, Tuple
from urllib.parse import urlencode

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WEB = os.path.join(ROOT, "example-app", "web")

NAME = "Browser"
COUNT = 5
A, B = 2, 40

results: List[Tuple[str, bool, str]] = []


def check(name: str, run: Callable[[], None]) -> None:
    try:
        run()
        results.append((name, True, ""))
    except Exception as err:  # noqa: BLE001 - every failure is reported
        results.append((name, False, f"{type(err).__name__}: {err}"))


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def wait_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")
            time.sleep(0.1)


def static_server(host: str, port: int) -> "subprocess.Popen[bytes]":
    """http.server over example-app/web/ on host:port (its own process, stopped at the end)."""
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", host, "--directory", WEB],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    wait_port(host, port, 10)
    return server


def chromium(chromium_bin: str, driver_bin: str) -> WebDriver:
    options = Options()
    options.binary_location = chromium_bin
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=760,900",
        "--hide-scrollbars",
        "--no-first-run",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_bin), options=options)
    driver.set_page_load_timeout(15)
    driver.set_script_timeout(15)
    return driver


def load(driver: WebDriver, origin: str, gateway: str, timeout: float) -> str:
    """Opens the page and waits until it says all its calls ended; returns that state."""
    query = urlencode({"gateway": gateway, "name": NAME, "count": COUNT, "a": A, "b": B})
    driver.get(f"{origin}/?{query}")
    status = driver.find_element(By.ID, "status")
    try:
        WebDriverWait(driver, timeout).until(
            lambda _: status.get_attribute("data-state") in ("done", "failed")
        )
    except TimeoutException:
        raise AssertionError(f"the page did not finish in {timeout}s; it shows {status.text!r}")
    return status.get_attribute("data-state") or ""


def text(driver: WebDriver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def console(driver: WebDriver) -> str:
    try:
        return "\n".join(f"  {entry['level']} {entry['message']}" for entry in driver.get_log("browser"))
    except Exception:  # noqa: BLE001 - diagnostics only
        return "  (no browser log)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", required=True, help="the gateway's origin, e.g. http://127.0.0.1:50081")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="the page's port (PORT + 1 serves the refused origin)")
    parser.add_argument("--screenshot", help="write a PNG of the page here")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--chromedriver", default=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds for the page's calls")
    args = parser.parse_args()

    if not os.path.isfile(os.path.join(WEB, "dist", "app.js")):
        print(f"FAIL {WEB}/dist/app.js is missing: run `npm ci && npm run build` in example-app/web")
        return 1
    origin = f"http://{args.host}:{args.port}"
    refused_origin = f"http://{args.host}:{args.port + 1}"
    expect(origin != args.gateway.rstrip("/"), "the page needs another origin than the gateway")

    servers: List["subprocess.Popen[bytes]"] = []
    driver: Optional[WebDriver] = None
    try:
        servers.append(static_server(args.host, args.port))
        servers.append(static_server(args.host, args.port + 1))
        driver = chromium(args.chromium, args.chromedriver)
        page = driver

        def allowed_origin() -> None:
            state = load(page, origin, args.gateway, args.timeout)
            expect(state == "done", f"the page says {text(page, 'status')!r}:\n{page.find_element(By.TAG_NAME, 'body').text}")

        def say_hello() -> None:
            expect(text(page, "hello") == f"Hello, {NAME}!", f"SayHello shows {text(page, 'hello')!r}")

        def stream_greetings() -> None:
            items = page.find_elements(By.CSS_SELECTOR, "#stream li")
            shown = [(item.get_attribute("data-index"), item.get_attribute("data-message")) for item in items]
            wanted = [(str(index), f"Hello, {NAME}!") for index in range(COUNT)]
            expect(shown == wanted, f"StreamGreetings shows {shown}, wanted {wanted}")
            for index, item in enumerate(items):
                expect(item.text.startswith(f"#{index} Hello, {NAME}! (sent 20"), f"item {index}: {item.text!r}")
            status = text(page, "stream-status")
            expect(status.startswith(f"{COUNT} messages, stream closed with OK"), f"stream status {status!r}")

        def rest_sum() -> None:
            expect(text(page, "sum") == f"{A} + {B} = {A + B}", f"REST Add shows {text(page, 'sum')!r}")
            expect(text(page, "rest-path") == f"GET /v1/add/{A}/{B}", text(page, "rest-path"))

        check(f"page at {origin} -> gateway {args.gateway}: all calls answered", allowed_origin)
        check("SayHello (gRPC-Web) greeting shown", say_hello)
        check(f"StreamGreetings (gRPC-Web) all {COUNT} messages shown in order", stream_greetings)
        check("Calculator Add over REST: the sum shown", rest_sum)
        if args.screenshot:
            page.find_element(By.TAG_NAME, "body").screenshot(args.screenshot)
            print(f"screenshot: {args.screenshot}")
        if not all(ok for _, ok, _ in results):
            print("browser console:\n" + console(page))

        def refused() -> None:
            state = load(page, refused_origin, args.gateway, args.timeout)
            expect(state == "failed" and text(page, "status") == "3 call(s) failed", f"the page says {text(page, 'status')!r}")
            for element_id in ("hello", "sum"):
                expect(text(page, element_id).startswith("failed: "), f"#{element_id} shows {text(page, element_id)!r}")
            expect(not page.find_elements(By.CSS_SELECTOR, "#stream li"), "stream messages from a refused origin")

        check(f"page at {refused_origin} (not in cors.allowed_origins): every call refused", refused)
    finally:
        if driver is not None:
            driver.quit()
        for server in servers:
            server.terminate()
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.kill()

    failed = 0
    for name, ok, detail in results:
        print(f"{'ok  ' if ok else 'FAIL'} browser {name}{'' if ok else ': ' + detail}")
        failed += 0 if ok else 1
    print(f"browser: {len(results) - failed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
