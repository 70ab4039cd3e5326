"""Open a page in headless Chromium through the DevTools protocol: console errors, DOM facts,
and a full-page screenshot. Uses the system's ``chromium`` (``make browser`` installs it);
nothing is downloaded, and the debugging port listens on 127.0.0.1 only."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import websocket

FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root in CI containers
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",  # Chromium picks a free port and writes it to DevToolsActivePort
)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError("chromium is not installed: run `make browser` (Debian's package)")
    return found


@dataclass
class Page:
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, failed loads
    facts: dict = field(default_factory=dict)  # the value of ``probe`` in the loaded page


class DevTools:
    def __init__(self, ws_url: str, timeout_s: float):
        self.ws = websocket.create_connection(ws_url, timeout=timeout_s, suppress_origin=True)
        self.next_id, self.events = 0, []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, deadline: float) -> None:
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} from Chromium")
            self.events.append(json.loads(self.ws.recv()))

    def close(self) -> None:
        self.ws.close()


def _port(profile: Path, proc: subprocess.Popen, deadline: float) -> int:
    marker = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode}")
        if marker.is_file() and marker.read_text().strip():
            return int(marker.read_text().split()[0])
        time.sleep(0.1)
    raise TimeoutError("chromium did not open its DevTools port")


def open_page(
    url: str, probe: str, screenshot: Path | None = None, width: int = 1400, timeout_s: float = 90
) -> Page:
    """Load ``url``, evaluate the JavaScript expression ``probe`` (its JSON value becomes
    ``facts``) and collect every error the page logged while loading."""
    deadline = time.monotonic() + timeout_s
    profile = tempfile.mkdtemp(prefix="genai-apm-chromium-")
    try:
        proc = subprocess.Popen(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port = _port(Path(profile), proc, deadline)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                target = next(t for t in json.load(r) if t["type"] == "page")
            tools = DevTools(target["webSocketDebuggerUrl"], timeout_s)
            try:
                for domain in ("Runtime", "Log", "Page"):
                    tools.call(f"{domain}.enable")
                tools.call(
                    "Emulation.setDeviceMetricsOverride",
                    width=width,
                    height=1000,
                    deviceScaleFactor=1,
                    mobile=False,
                )
                tools.call("Page.navigate", url=url)
                tools.wait_for("Page.loadEventFired", deadline)
                value = tools.call("Runtime.evaluate", expression=probe, returnByValue=True)
                page = Page(facts=value["result"].get("value"))
                if screenshot is not None:
                    size = tools.call("Page.getLayoutMetrics")["cssContentSize"]
                    shot = tools.call(
                        "Page.captureScreenshot",
                        format="png",
                        captureBeyondViewport=True,
                        clip={"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1},
                    )
                    screenshot.write_bytes(base64.b64decode(shot["data"]))
                page.errors = _errors(tools.events)
                return page
            finally:
                tools.close()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        _remove_profile(Path(profile))


def _remove_profile(profile: Path) -> None:
    # Chromium's helper processes outlive the browser process by a moment and may still write
    # into the profile while it is being removed ("Directory not empty"): retry briefly
    for _ in range(50):
        shutil.rmtree(profile, ignore_errors=True)
        if not profile.exists():
            return
        time.sleep(0.1)


def _errors(events: list[dict]) -> list[str]:
    out = []
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            out.append("console: " + " ".join(str(a.get("value")) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            out.append(
                "exception: " + details.get("exception", {}).get("description", details["text"])
            )
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            out.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}")
    return out
