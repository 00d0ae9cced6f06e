"""DBSC in a real browser: headless Chromium registers a device key with the demo, refreshes
its 2-second bound cookie by itself, a copy of its session cookie is refused elsewhere, and
logging out ends the browser's DBSC session.

The demo runs under uvicorn over https with a self-signed certificate made here, trusted
(``"CP,,"``) in an NSS database under a temporary ``HOME`` -- where Chromium on Linux looks
(``$HOME/.pki/nssdb``), never the real one. Plain http and ``--ignore-certificate-errors``
make Chromium skip registration silently, hence the trouble. Needs ``chromium``,
``chromedriver`` and ``certutil`` (``apt-get install chromium chromium-driver
libnss3-tools``); without them the test is skipped, except in CI (``CI=true``), where that is
a failure. The DevTools protocol (``Network.enableDeviceBoundSessions``) reports what the
browser did; the demo's log says what the server saw.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from examples.demo.app import DEMO_PASSWORD

from .test_browser import CHROMEDRIVER, CHROMIUM, CHROMIUM_ARGS, in_ci, serve_demo

CERTUTIL = shutil.which("certutil") or "/usr/bin/certutil"
FEATURES = "--enable-features=DeviceBoundSessions,EnableBoundSessionCredentialsSoftwareKeysForManualTesting"
LIFETIME = 2  # seconds: the bound cookie's, through SESSIONWARE_DEMO_DBSC_LIFETIME
COOKIE = "__Host-session"
WAIT = 15


def _needed() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER, CERTUTIL) if not os.access(path, os.X_OK)]
    if missing:
        reason = f"{' and '.join(missing)} not found (apt-get install chromium chromium-driver libnss3-tools)"
        if in_ci():
            pytest.fail(f"{reason}; in CI the browser test must run", pytrace=False)
        pytest.skip(reason)


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed leaf for localhost and 127.0.0.1 (CA:FALSE, serverAuth), valid for two days."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class Demo:
    """The demo over https, and the temporary HOME whose NSS database trusts its certificate."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.cert, self.key = _certificate(directory)
        self.home = directory / "home"
        nssdb = self.home / ".pki" / "nssdb"
        nssdb.mkdir(parents=True)
        subprocess.run([CERTUTIL, "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True)
        subprocess.run(
            [
                CERTUTIL,
                "-d",
                f"sql:{nssdb}",
                "-A",
                "-t",
                "CP,,",
                "-n",
                "sessionware-test",
                "-i",
                str(self.cert),
            ],
            check=True,
        )
        self.log = directory / "uvicorn.log"
        self.url = ""

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def requests(self, line: str) -> int:
        """How many times the access log shows ``line`` (say ``"POST /dbsc/refresh HTTP/1.1\\" 200"``)."""
        return self.log_text().count(line)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    _needed()
    served = Demo(tmp_path_factory.mktemp("dbsc-demo"))
    tls = ["--ssl-certfile", str(served.cert), "--ssl-keyfile", str(served.key)]
    with serve_demo(served.directory, *tls, SESSIONWARE_DEMO_DBSC_LIFETIME=str(LIFETIME)) as url:
        assert url.startswith("https://")
        served.url = url
        yield served


@pytest.fixture
def browser(demo: Demo, tmp_path: Path) -> Iterator[Callable[[str], webdriver.Chrome]]:
    """Makes headless Chromiums with DBSC on, each with a fresh profile of its own."""
    started: list[webdriver.Chrome] = []

    def start(profile: str) -> webdriver.Chrome:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in [*CHROMIUM_ARGS, FEATURES, f"--user-data-dir={tmp_path / profile}"]:
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        # HOME: the temporary NSS database that trusts the demo's certificate.
        service = Service(executable_path=CHROMEDRIVER, env={**os.environ, "HOME": str(demo.home)})
        chrome = webdriver.Chrome(options=options, service=service)
        started.append(chrome)
        chrome.execute_cdp_cmd("Network.enable", {})
        chrome.execute_cdp_cmd("Network.enableDeviceBoundSessions", {"enable": True})
        return chrome

    try:
        yield start
    finally:
        for chrome in started:
            chrome.quit()


class Events:
    """The DBSC events a browser reported through the DevTools protocol, collected as they come."""

    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver
        self.seen: list[dict[str, Any]] = []

    def collect(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.driver.get_log("performance")  # type: ignore[no-untyped-call]
        for entry in entries:
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.deviceBoundSessionEventOccurred":
                self.seen.append(message["params"])
        return self.seen

    def succeeded(self, kind: str) -> list[dict[str, Any]]:
        """Events of ``kind`` (``"creation"``, ``"refresh"``...) whose fetch succeeded."""
        details = kind + "EventDetails"
        return [e for e in self.collect() if details in e and e[details].get("fetchResult") == "Success"]


def _log_in(driver: webdriver.Chrome, demo: Demo) -> None:
    driver.get(demo.url + "/")
    driver.find_element(By.NAME, "password").send_keys(DEMO_PASSWORD)
    driver.find_element(By.ID, "login").click()
    WebDriverWait(driver, WAIT).until(
        lambda d: d.find_elements(By.ID, "user"),
        f"the log-in did not land; the demo's log:\n{demo.log_text()}",
    )


def test_chromium_binds_refreshes_by_itself_a_copied_cookie_is_refused_and_log_out_ends_it(
    demo: Demo, browser: Callable[[str], webdriver.Chrome]
) -> None:
    chrome = browser("owner")
    events = Events(chrome)
    _log_in(chrome, demo)

    # The log-in response offered registration; the browser registers in the background.
    WebDriverWait(chrome, WAIT).until(lambda _: events.succeeded("creation"), "Chromium did not register")
    created = events.succeeded("creation")[0]["creationEventDetails"]["newSession"]
    assert [craving["name"] for craving in created["cookieCravings"]] == ["__Host-dbsc"]
    assert demo.requests('"POST /dbsc/register HTTP/1.1" 200') == 1
    chrome.get(demo.url + "/")
    assert chrome.find_elements(By.ID, "bound"), chrome.page_source

    # The 2 s bound cookie runs out; the next page load waits for the browser's own refresh.
    refreshes = demo.requests('"POST /dbsc/refresh HTTP/1.1" 200')
    time.sleep(LIFETIME + 1.5)
    chrome.get(demo.url + "/")
    assert chrome.find_element(By.ID, "user").text == "demo", chrome.page_source
    assert chrome.find_elements(By.ID, "bound")
    assert demo.requests('"POST /dbsc/refresh HTTP/1.1" 200') > refreshes
    assert events.succeeded("refresh")
    assert "refused a request of a device-bound session" not in demo.log_text()

    # The session cookie, copied into another browser: refused there.
    cookies = chrome.execute_cdp_cmd("Storage.getCookies", {})["cookies"]
    (session_cookie,) = [cookie for cookie in cookies if cookie["name"] == COOKIE]
    thief = browser("thief")
    thief.execute_cdp_cmd(
        "Network.setCookie",
        {
            "name": COOKIE,
            "value": session_cookie["value"],
            "url": demo.url + "/",
            "path": "/",
            "secure": True,
            "httpOnly": True,
            "sameSite": "Lax",
        },
    )
    thief.get(demo.url + "/")
    assert not thief.find_elements(By.ID, "user"), thief.page_source
    assert "Unauthorized" in thief.page_source
    assert "refused a request of a device-bound session (DBSC): no bound cookie" in demo.log_text()

    # The owner is unaffected.
    chrome.get(demo.url + "/")
    assert chrome.find_element(By.ID, "user").text == "demo"

    # Logging out ends the DBSC session too: the browser's next refresh is refused, it gives
    # the session up, and the pages load as for anyone logged out.
    ended = demo.requests('"POST /dbsc/refresh HTTP/1.1" 401')
    chrome.find_element(By.ID, "logout").click()
    WebDriverWait(chrome, WAIT).until(lambda d: d.find_elements(By.ID, "login"), "the log-out did not land")
    time.sleep(LIFETIME + 1.5)
    chrome.get(demo.url + "/")
    assert chrome.find_elements(By.ID, "login"), chrome.page_source
    WebDriverWait(chrome, WAIT).until(
        lambda _: [e for e in events.collect() if "terminationEventDetails" in e],
        f"Chromium kept its DBSC session after the log-out; the demo's log:\n{demo.log_text()}",
    )
    assert demo.requests('"POST /dbsc/refresh HTTP/1.1" 401') > ended
