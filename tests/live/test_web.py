"""``monitor ADDRESS --web``: the page, its plotly.js served locally, the documents as server-sent
events (junk ignored and counted), and, in a real headless Chromium, curves that grow while a
dry run publishes."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ffzero_lab.cli.app import app
from ffzero_lab.core.errors import UserError
from ffzero_lab.live.monitor import watch
from ffzero_lab.live.publisher import TOPIC, Publisher
from ffzero_lab.live.web import WebMonitor, parse_web_address

from .browser import Chromium, chromium_missing
from .test_live import ROOT, free_port, wait_until_subscribed
from .test_remote import stop

STEP = {"layer": 0, "epoch": 0, "step": 0, "version": 0, "loss": 0.5, "accuracy": 0.25, "lr": 0.01, "evaluations": 8}


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:0", ("127.0.0.1", 0)), ("localhost:8080", ("localhost", 8080)), ("[::1]:9", ("::1", 9)),
    ("127.0.0.2:5578", ("127.0.0.2", 5578))])
def test_loopback_addresses_are_served(text: str, expected: tuple[str, int]) -> None:
    assert parse_web_address(text) == expected


@pytest.mark.parametrize("text", ["0.0.0.0:8080", "10.1.2.3:80", "example.org:80", "[::]:80"])
def test_other_hosts_need_web_public(text: str) -> None:
    with pytest.raises(UserError, match="not a loopback address.*--web-public"):
        parse_web_address(text)
    assert parse_web_address(text, public=True)[1] == int(text.rsplit(":", 1)[1])


@pytest.mark.parametrize("text", ["8080", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000", "tcp://127.0.0.1:5"])
def test_not_host_port_is_refused(text: str) -> None:
    with pytest.raises(UserError, match="is not HOST:PORT"):
        parse_web_address(text)


def test_cli_refuses_a_public_page_in_one_line() -> None:
    result = CliRunner().invoke(app, ["monitor", "tcp://127.0.0.1:1", "--web", "0.0.0.0:8080", "--timeout", "1"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        "error: --web: 0.0.0.0 is not a loopback address and the page has no login; add --web-public to serve it "
        "there anyway"]


def get(url: str, path: str) -> tuple[int, str, bytes]:
    host, port = re.match(r"http://([\d.]+):(\d+)/", url).groups()  # type: ignore[union-attr]
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        conn.close()


def sse_messages(url: str, until: Any, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Read /events until ``until(messages)`` holds."""
    host, port = re.match(r"http://([\d.]+):(\d+)/", url).groups()  # type: ignore[union-attr]
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout_s)
    messages: list[dict[str, Any]] = []
    try:
        conn.request("GET", "/events")
        response = conn.getresponse()
        assert response.getheader("Content-Type") == "text/event-stream"
        while not until(messages):
            line = response.fp.readline().decode()
            if line.startswith("data: "):
                messages.append(json.loads(line[6:]))
    finally:
        conn.close()
    return messages


def test_the_page_its_script_and_the_documents_as_events() -> None:
    """Valid documents reach the page as events; junk is ignored and counted; a page opened late
    gets the run so far, with only the latest taps of each layer."""
    address = f"tcp://127.0.0.1:{free_port()}"
    publisher = Publisher.bind(address)
    server = WebMonitor("127.0.0.1", 0).start()
    board: list[Any] = []
    devnull = open(os.devnull, "w")  # noqa: SIM115  # closed below
    watcher = threading.Thread(target=lambda: board.append(watch(address, devnull, True, 30, errors=devnull,
                                                                  web=server)))
    watcher.start()
    try:
        assert publisher.wait_for_subscribers(1, 10.0) == 1
        status, kind, page = get(server.url, "/")
        assert status == 200 and kind.startswith("text/html") and b'<script src="/plotly.min.js">' in page
        status, kind, script = get(server.url, "/plotly.min.js")
        assert status == 200 and "javascript" in kind and script.startswith(b"/**\n* plotly.js v")
        assert get(server.url, "/elsewhere")[0] == 404
        publisher("start", {"run_uid": "r1", "time": 1.0, "steps_per_epoch": 1, "layers": [{}],
                            "protocol": {"method": "ff-dd", "name": "<b>x</b>", "train": {"epochs": 1}}})
        publisher.socket.send_multipart([TOPIC, b"event", b"{not json"])
        publisher.socket.send_multipart([TOPIC])
        for version in range(3):
            publisher("step", {"run_uid": "r1", "time": 2.0 + version, **STEP, "version": version})
            publisher("taps", {"run_uid": "r1", "time": 2.0 + version, "layer": 0, "label": 1,
                               "tap": [0.6, 0.8], "prototype": [1.0, 0.0], "goodness": [0.6, float(version)]})
        publisher("stop", {"run_uid": "r1", "time": 9.0, "exit_status": "complete", "test_accuracy": float("nan")})
        watcher.join(30)
        messages = sse_messages(server.url, lambda m: any(x["name"] == "stop" for x in m)
                                and any(x["name"] == "ignored" for x in m))
    finally:
        server.stop()
        publisher.close()
        devnull.close()
    names = [m["name"] for m in messages]
    assert names[0] == "reset" and names[1] == "start" and {"name": "ignored", "count": 2} in messages
    events = [m["doc"] for m in messages if m["name"] == "event"]
    taps = [e for e in events if "tap" in e["data"]]
    assert len(events) == 3 + 1 and taps[0]["data"]["goodness"] == [0.6, 2.0]  # the latest taps only
    assert messages[-2]["doc"]["exit_status"] == "success" and messages[-2]["doc"]["test_accuracy"] is None
    assert board[0].malformed == 2


def colored_pixels(png: Path, box: dict[str, float]) -> int:
    """Pixels inside ``box`` (CSS pixels, one device pixel each) that are clearly coloured (curves;
    the page's white, the grid's greys and the black text are not)."""
    rgb = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    crop = rgb[int(box["top"]):int(box["bottom"]), int(box["left"]):int(box["right"])]
    return int(((crop.max(axis=-1) - crop.min(axis=-1)) > 60).sum())


PLOT_AREAS = """JSON.stringify(["loss", "accuracy"].map((id) => {
    const r = document.querySelector("#" + id + " .nsewdrag").getBoundingClientRect();
    return {left: r.left, top: r.top, right: r.right, bottom: r.bottom};
}))"""


#: Epochs per layer of the published dry run: long enough that the first screenshot comes well
#: before the end of the run.
EPOCHS = 10


@pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or "")
def test_chromium_shows_the_curves_grow_while_a_dry_run_publishes(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    monitor = subprocess.Popen([sys.executable, "-m", "ffzero_lab", "monitor", address, "--web", "127.0.0.1:0",
                                "--jsonl", "--timeout", "300"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=env, text=True)
    browser = run = None
    try:
        line = monitor.stderr.readline()  # type: ignore[union-attr]
        url = re.search(r"live page at (http://\S+)", line)
        assert url, line
        browser = Chromium(tmp_path / "profile")
        browser.open(url.group(1))
        browser.wait_for("window.ffzero && window.ffzero.connected && typeof Plotly !== 'undefined'")
        wait_until_subscribed(address)
        run = subprocess.Popen(
            [sys.executable, "-m", "ffzero_lab", "dry-run", str(ROOT / "protocols" / "quickstart.yaml"),
             "--set", f"train.epochs={EPOCHS}", "--set", "data.train_limit=512", "--set", "data.test_limit=64",
             "--set", "device.settings.init=random",
             # 8 steps an epoch: batches of 64, no validation split (the quickstart's own: 16, 15 %)
             "--set", "train.batch_size=64", "--set", "data.validation=0", "--set", "train.patience=null",
             # the numpy path: the compiled kernel finishes the run within the first screenshot's wait
             "--set", "device.settings.kernel=numpy", "--runs-dir", str(tmp_path / "runs"), "-q",
             "--publish", address, "--wait-subscribers", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        browser.wait_for("window.ffzero.points >= 3")
        time.sleep(0.6)  # two redraws (every 0.25 s): the picture shows what the page has
        first_points = browser.evaluate("window.ffzero.points")
        first = browser.screenshot(tmp_path / "first.png")
        areas = json.loads(browser.evaluate(PLOT_AREAS))
        browser.wait_for("window.ffzero.status === 'success'", timeout_s=300)
        time.sleep(0.6)
        last_points = browser.evaluate("window.ffzero.points")
        last = browser.screenshot(tmp_path / "last.png")
        assert run.wait(timeout=60) == 0
    finally:
        for process in (run, monitor):
            if process is not None:
                stop(process)
        if browser is not None:
            browser.close()
    assert last_points == 2 * EPOCHS * 8 > first_points  # 2 layers x EPOCHS x 8 steps, all arrived
    for area in areas:
        assert area["right"] - area["left"] > 100 and area["bottom"] - area["top"] > 100
        before, after = colored_pixels(first, area), colored_pixels(last, area)
        assert before > 0 and after > 1.5 * before, (area, before, after)
