"""The web console in a real headless browser: Debian's chromium driven by Playwright.

The rover runs on a pty, `farside gs serve` owns the link as its own process, and the page
(hil/gs/web/) is one more client of the service: commands sent from its form go through
the service and their stages come back over its WebSocket; the telemetry it shows is checked
against the service's archive. Playwright is pointed at the system chromium
(`executable_path`): no browser is downloaded.

`FARSIDE_SCREENSHOTS=docs python -m pytest tests/gs/test_web_console.py` also drives a short
traverse and writes the README's screenshots (docs/console-overview.png, console-command.png).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hil.errors import FarsideError
from hil.gs.mission import Mission
from hil.gs.units import UNITS
from tests.conftest import need
from tests.gs.conftest import stop
from tests.gs.rover_pty import ROOT, start_rover

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = os.environ.get("FARSIDE_SCREENSHOTS")
FOREIGN_HOST = "console.test"  # a host name the browser resolves to loopback: not the operator's own
WAIT_MS = 20_000  # page waits; the slowest is a short drive (3.6 s) through the service


@dataclass
class Console:
    """The service (its process, base URL and token, and how to start it again on the same
    port), and a page open on its console."""

    service: subprocess.Popen[str]
    restart: Callable[[], subprocess.Popen[str]]
    http: str
    port: int
    token: str
    browser: Any
    page: Any
    posts: list[str]

    def api(self, path: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
        req = urllib.request.Request(
            f"{self.http}{path}", method="POST" if body is not None else "GET",
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token or self.token}"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return {"status": exc.code, **json.loads(exc.read())}


def _wait_line(proc: subprocess.Popen[str], prefix: str, timeout: float = 30.0) -> str:
    """The first stdout line of `proc` that starts with `prefix` (the service prints its URL)."""
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"the service exited ({proc.poll()}) before printing {prefix!r}")
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    raise AssertionError(f"the service printed no {prefix!r} in {timeout} s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    need(CHROMIUM is not None, "no chromium on PATH (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    tmp = tmp_path_factory.mktemp("console")
    rover, path = start_rover(tmp / "rover")
    env = {**os.environ, "FARSIDE_GS_RUN": str(tmp / "run")}
    token = secrets.token_urlsafe(16)
    port = _free_port()
    argv = [sys.executable, "-m", "hil.cli", "gs", "serve", "--link", path, "--archive-root", str(tmp / "archive"),
            "--port", str(port), "--token", token]
    log = open(tmp / "service.log", "a")
    urls: list[str] = []

    def start() -> subprocess.Popen[str]:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            urls.append(_wait_line(proc, "console: "))
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        return proc

    pw = browser = None
    c: Console | None = None
    service: subprocess.Popen[str] | None = None
    try:
        service = start()
        url = urls[0]
        http = f"http://127.0.0.1:{port}"
        assert url == f"{http}/", "the operator's own console needs no token"
        pw = sync_api.sync_playwright().start()
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=[f"--host-resolver-rules=MAP {FOREIGN_HOST} 127.0.0.1"])
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(WAIT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        posts: list[str] = []
        page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        page.wait_for_selector("#ws-state[data-state='open']")
        c = Console(service, start, http, port, token, browser, page, posts)
        yield c
        assert errors == [], f"the page raised: {errors}"
    finally:
        if browser is not None:
            browser.close()
        if pw is not None:
            pw.stop()
        service = c.service if c is not None else service
        if service is not None:
            service.terminate()
            try:
                service.wait(timeout=10)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait()
        log.close()
        stop(rover)


def send_from_form(page: Any, name: str, **args: str) -> None:
    page.select_option("#cmd-name", name)
    for arg, text in args.items():
        field = page.locator(f"#arg-{arg}")
        if field.evaluate("e => e.tagName") == "SELECT":  # an enum: its labels to choose from
            field.select_option(text)
        else:
            field.fill(text)
    page.click("#cmd-send")


FINAL = ".stage[data-stage=COMPLETED], .stage[data-stage=REJECTED], .stage[data-stage=START_FAILED], " \
        ".stage[data-stage=COMPLETION_FAILED], .stage[data-stage=FAILED]"


def send_and_wait(c: Console, name: str, during: str | None = None, **args: str) -> dict[str, Any]:
    """Send a command from the form; once the page shows its final stage, what its entry shows.
    With `during`, the page must first show that stage alone, before any final one (stages
    shown as they arrive, not at the end)."""
    page = c.page
    count_before = page.locator("#cmd-history li").count()
    send_from_form(page, name, **args)
    page.wait_for_function(
        "n => document.querySelectorAll('#cmd-history li').length > n", arg=count_before)
    cid = page.locator("#cmd-history li").first.get_attribute("data-id")
    item = page.locator(f"#cmd-history li[data-id='{cid}']")
    assert item.locator(".cname").text_content() == name
    if during is not None:
        page.wait_for_function(
            "([li, stage, final]) => li.querySelector(`.stage[data-stage=${stage}]`) && !li.querySelector(final)",
            arg=[item.element_handle(), during, FINAL])
    item.locator(FINAL).wait_for()
    return {"id": cid, "stages": item.locator(".stage").evaluate_all("els => els.map(e => e.dataset.stage)"),
            "elapsed": item.locator(".stage i").all_text_contents(), "outcome": item.locator(".outcome").text_content()}


def test_commands_sent_from_the_page_show_their_stages(console: Console) -> None:
    c = console
    n = len(c.api("/api/commands")["commands"])
    ping = send_and_wait(c, "PING")
    assert "ACCEPTED" in ping["stages"] and ping["stages"][-1] == "COMPLETED"

    drive = send_and_wait(c, "DRIVE_DISTANCE", during="STARTED", distance_m="0.2", speed_mph="200")
    # every stage as it arrived, in order, each with its elapsed time
    stages = drive["stages"]
    assert stages[0] == "QUEUED" and stages[-1] == "COMPLETED", stages
    assert stages.index("ACCEPTED") < stages.index("STARTED") < stages.index("COMPLETED")
    assert all(e.strip().startswith("+") and e.strip().endswith(" s") for e in drive["elapsed"]), drive["elapsed"]
    completed = float(drive["elapsed"][stages.index("COMPLETED")].strip()[1:-2])
    assert 3.0 < completed < 15.0, f"a 0.2 m drive at 200 m/h takes 3.6 s, the page says {completed} s"
    assert drive["outcome"] == "COMPLETED"

    # a command the rover refuses: the stage says why
    refused = send_and_wait(c, "PARAM_SET", param_id="3", value="45")
    assert refused["stages"][-1] == "REJECTED" and refused["outcome"] == "REJECTED"
    assert "(OUT_OF_RANGE)" in c.page.locator("#cmd-history li .stage[data-stage=REJECTED]").first.text_content()

    # what the page shows is the service's record of the same commands, sent as the console
    history = c.api("/api/commands")["commands"]
    assert len(history) == n + 3
    for shown, name in ((ping, "PING"), (drive, "DRIVE_DISTANCE")):
        record = c.api(f"/api/commands/{shown['id']}")
        assert record["name"] == name and record["client"] == "web console"
        assert [s["stage"] for s in record["stages"]] == shown["stages"]
    assert c.api(f"/api/commands/{drive['id']}")["args"] == {"distance_m": pytest.approx(0.2), "speed_mph": 200.0}


def _page_telemetry(page: Any) -> tuple[float, dict[str, Any]]:
    """The HK the page shows, read at one instant: its reception time, and per parameter
    (value, limit, unit)."""
    t, values = page.evaluate(
        "() => [Number(document.querySelector('#tm-table').dataset.t),"
        " Object.fromEntries([...document.querySelectorAll('#tm-table tbody tr')]"
        ".filter(r => r.querySelector('.value').dataset.value !== undefined)"
        ".map(r => [r.dataset.name, [JSON.parse(r.querySelector('.value').dataset.value),"
        " r.dataset.limit, r.querySelector('.unit').textContent]]))]")
    return t, values


def test_telemetry_on_the_page_equals_the_archive(console: Console) -> None:
    c = console
    c.page.wait_for_selector("#tm-table tr[data-name='uptime_s'] .value[data-value]")
    received, shown = _page_telemetry(c.page)
    dictionary = c.api("/api/dictionary")
    specs = {p["name"]: p for p in dictionary["telemetry"]}
    assert set(shown) == set(specs), "every HK parameter of the dictionary on the page"

    # the archive's record of the same HK packet (its frame's reception time; two packets may
    # share a rover second), decoded by the service from its archive
    names = sorted(specs)
    deadline = time.monotonic() + 10
    while True:
        hk = c.api(f"/api/archive/hk?names={','.join(names)}")
        rows = [i for i, t in enumerate(hk.get("t", ())) if abs(t - received) < 1e-6]
        if rows or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert rows, f"no HK record received at {received} in the archive ({hk.get('error', 'no error')})"
    row = rows[-1]
    assert hk["values"]["uptime_s"][row] == shown["uptime_s"][0]
    mismatches = []
    for name, (value, limit, unit) in shown.items():
        stored = hk["values"][name][row]
        spec = specs[name]
        if isinstance(value, str):  # an enum: the page shows the label of the archived code
            value = spec["enum"][value]
        if not math.isclose(value, stored, rel_tol=1e-9, abs_tol=1e-9):
            mismatches.append(f"{name}: page {value}, archive {stored}")
        assert unit == {"degC": "°C", "deg": "°", "deg/h": "°/h"}.get(spec["unit"] or "", spec["unit"] or "")
        assert limit in ("ok", "warning", "critical")
    assert not mismatches, mismatches
    # the limit colours are the service's verdicts, and the traverse map has the pose
    live_hk = c.api("/api/telemetry")
    assert live_hk["t"] - received < 2.5, "the page is more than an HK period behind the service"
    live = live_hk["values"]
    assert c.page.locator("#tm-table tr[data-name='battery_pct']").get_attribute("data-limit") == live["battery_pct"]["limit"]
    c.page.wait_for_function(  # the map is drawn on the next frame: it follows the table
        "() => document.querySelector('#map-pose').textContent.startsWith(`x ${Number(document.querySelector("
        "\"#tm-table tr[data-name='x_m'] .value\").dataset.value).toFixed(3)} m`)")


def test_a_range_error_is_shown_and_nothing_is_sent(console: Console) -> None:
    c = console
    before = len(c.api("/api/commands")["commands"])
    posts = len(c.posts)
    cli = Mission.load()
    for distance, speed in (("500", "100"), ("1", "1km/h"), ("2 furlong", "100")):
        send_from_form(c.page, "DRIVE_DISTANCE", distance_m=distance, speed_mph=speed)
        with pytest.raises(FarsideError) as exc:
            cli.parse_args("DRIVE_DISTANCE", [f"distance_m={distance}", f"speed_mph={speed}"])
        error = c.page.locator("#cmd-error")
        assert error.get_attribute("data-source") == "page"
        assert error.text_content() == str(exc.value)  # the page says what the CLI says
        assert c.page.locator("#arg-distance_m.invalid, #arg-speed_mph.invalid").count() == 1
    time.sleep(0.3)
    assert len(c.posts) == posts, "the page sent a command it had refused"
    assert len(c.api("/api/commands")["commands"]) == before


def test_the_form_is_built_from_the_dictionary(console: Console) -> None:
    """Every command in the list; an argument's unit and range beside it; an enum argument a
    list of the labels its range allows, as the CLI names them."""
    c = console
    cli = Mission.load()
    assert c.page.locator("#cmd-name option").all_text_contents() == list(cli.commands_by_name)
    c.page.select_option("#cmd-name", "DRIVE_DISTANCE")
    arg = c.page.locator("#cmd-args .arg").filter(has=c.page.locator("#arg-speed_mph"))
    assert arg.locator(".unit").text_content() == "[m/h]" and arg.locator(".range").text_content() == "1..200"
    c.page.select_option("#cmd-name", "MODE_SET")
    mode = next(a for a in cli.command("MODE_SET").args if a.name == "mode")
    assert c.page.locator("#arg-mode option").evaluate_all("os => os.map(o => o.value)") == cli._allowed(mode)


def test_the_services_refusal_is_shown(console: Console) -> None:
    c = console
    before = len(c.api("/api/commands")["commands"])
    c.page.fill("#cmd-at", "yesterday")
    try:
        send_from_form(c.page, "PING")
        c.page.wait_for_selector("#cmd-error[data-source='service']")
    finally:
        c.page.fill("#cmd-at", "")
    direct = c.api("/api/commands", {"name": "PING", "args": {}, "at": "yesterday"})
    assert direct["status"] == 400
    assert c.page.locator("#cmd-error").text_content() == direct["error"]
    assert len(c.api("/api/commands")["commands"]) == before


def test_the_queue_is_held_and_released_from_the_page(console: Console) -> None:
    c = console
    c.page.click("#queue-hold")
    c.page.wait_for_selector("#queue-state[data-held='true']")
    assert c.api("/api/status")["queue"]["held"] is True
    assert c.page.locator("#queue-hold").is_disabled()
    # a command sent while the queue is held waits, QUEUED, until the release
    count = c.page.locator("#cmd-history li").count()
    send_from_form(c.page, "PING")
    c.page.wait_for_function("n => document.querySelectorAll('#cmd-history li').length > n", arg=count)
    held = c.page.locator("#cmd-history li").first
    time.sleep(0.5)
    assert held.get_attribute("data-state") == "held"
    assert held.locator(".stage").evaluate_all("els => els.map(e => e.dataset.stage)") == ["QUEUED"]
    c.page.click("#queue-release")
    c.page.wait_for_selector("#queue-state[data-held='false']")
    assert c.api("/api/status")["queue"]["held"] is False
    c.page.wait_for_selector(f"#cmd-history li[data-id='{held.get_attribute('data-id')}'] .stage[data-stage=COMPLETED]")


TRACE_PIXELS = """canvas => {
    const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;  // pixels of the trace's colour (#5fb3f9), give or take antialiasing
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] > 200 && Math.abs(d[i] - 0x5f) < 40 && Math.abs(d[i + 1] - 0xb3) < 40 && d[i + 2] > 200) n++;
    }
    return n;
}"""


def test_a_ticked_parameter_is_plotted_and_the_track_is_drawn(console: Console) -> None:
    c = console
    box = c.page.locator("#tm-table tr[data-name='odometer_m'] input")
    box.check()
    figure = c.page.locator("#plot-list figure[data-name='odometer_m']")
    assert figure.locator("figcaption").text_content().startswith("odometer_m [m]")
    c.page.wait_for_function(f"c => ({TRACE_PIXELS})(c) > 20", arg=figure.locator("canvas").element_handle())
    # the drive above moved the rover: its track on the map
    assert c.page.locator("#map-canvas").evaluate(TRACE_PIXELS) > 20
    box.uncheck()
    assert figure.count() == 0


def test_stop_is_one_click(console: Console) -> None:
    c = console
    count = c.page.locator("#cmd-history li").count()
    c.page.click("#stop")
    c.page.wait_for_function("n => document.querySelectorAll('#cmd-history li').length > n", arg=count)
    item = c.page.locator("#cmd-history li").first
    assert item.locator(".cname").text_content() == "STOP"
    c.page.wait_for_selector(f"#cmd-history li[data-id='{item.get_attribute('data-id')}'] .stage[data-stage=COMPLETED]")


def test_events_are_listed_and_filtered(console: Console) -> None:
    c = console
    c.page.wait_for_selector("#ev-table tr[data-seq]")
    events = c.api("/api/events?limit=1000")["events"]
    c.page.wait_for_function("n => document.querySelectorAll('#ev-table tbody tr').length >= n", arg=len(events))
    rows = c.page.locator("#ev-table tbody tr")
    assert rows.evaluate_all("rs => rs.map(r => Number(r.dataset.seq))") == [e["seq"] for e in events]
    name = events[-1]["name"]  # the drive above ended with events (DRIVE_COMPLETED, MODE_CHANGE)
    c.page.fill("#ev-filter", name.lower())
    visible = c.page.locator("#ev-table tbody tr:not([hidden]) td:nth-child(4)").all_text_contents()
    assert visible == [e["name"] for e in events if name.lower() in e["name"].lower()]
    c.page.fill("#ev-filter", "")
    assert c.page.locator("#ev-table tbody tr:not([hidden])").count() == len(events)


def test_the_link_and_cop1_state_are_shown(console: Console) -> None:
    c = console
    status = c.api("/api/status")
    assert c.page.locator("#link-pill").get_attribute("data-up") == "true"
    c.page.wait_for_function("vs => document.querySelector('#fop-vs').textContent === String(vs)",
                             arg=status["fop"]["vs"])
    assert c.page.locator("#fop-state").text_content() == status["fop"]["state"]
    assert c.page.locator("#rover-mode").text_content() in ("STANDBY", "DRIVE")


def test_a_page_under_another_host_name_needs_the_token_and_passes_it_on(console: Console) -> None:
    """A page under a name that is not the operator's loopback (as from another machine, or a
    rebound DNS name) gets nothing without the token; with `?token=` in its URL it passes the
    token to the API and the WebSocket and works."""
    c = console
    page = c.browser.new_page()
    try:
        page.set_default_timeout(WAIT_MS)
        assert page.goto(f"http://{FOREIGN_HOST}:{c.port}/").status == 401
        page.goto(f"http://{FOREIGN_HOST}:{c.port}/?token={c.token}")
        page.wait_for_selector("body[data-ready='1']")
        page.wait_for_selector("#ws-state[data-state='open']")
        page.wait_for_selector("#tm-table tr[data-name='uptime_s'] .value[data-value]")
        assert page.locator("#cmd-name option").count() == len(c.api("/api/dictionary")["commands"])
    finally:
        page.close()


# what an operator might type, right and wrong, for any argument
TYPED = ["0", "1", "-1", "2.5", "6", "7", "200", "201", "-200.5", "500", "1e9", "1e400", "0x10", "-0x10",
         "5km/h", "0.05m/s", "90deg", "-1.5rad", "40cm", "2min", "3mph", "4 furlong", "abc", "1..2",
         "STANDBY", "drive", "BOOT", "SLOPE_DEG"]


def test_the_form_checks_every_argument_as_the_cli_does(console: Console) -> None:
    """Every argument of every command, and a spread of typed text: the page accepts what the
    CLI accepts, with the same value in the dictionary's unit, and refuses the rest with the
    CLI's message, word for word."""
    cli = Mission.load()
    cases = []
    for cmd in cli.commands_by_name.values():
        for a in cmd.args:
            if a.type not in ("tc", "bytes"):
                cases += [[cmd.name, a.name, text] for text in TYPED]
    page = console.page.evaluate(
        """async (cases) => {
            const units = await import('./static/units.js');
            const token = new URLSearchParams(location.search).get('token');
            const dict = await (await fetch('api/dictionary', {headers: {Authorization: 'Bearer ' + token}})).json();
            const spec = {};
            for (const c of dict.commands) for (const a of c.args) spec[c.name + '.' + a.name] = a;
            return cases.map(([cmd, arg, text]) => {
              try { return {value: units.checkArg(cmd, spec[cmd + '.' + arg], text)}; }
              catch (e) { return {error: e.message}; }
            });
        }""", cases)
    wrong = []
    for (name, arg, text), got in zip(cases, page, strict=True):
        a = next(x for x in cli.command(name).args if x.name == arg)
        try:
            want: dict[str, Any] = {"value": cli.typed_value(name, a, text)}
        except FarsideError as exc:
            want = {"error": str(exc)}
        if "value" in want and "value" in got and got["value"] == pytest.approx(want["value"], rel=1e-12):
            continue
        if want != got:
            wrong.append(f"{name} {arg}={text}: CLI {want}, page {got}")
    assert not wrong, "\n".join(wrong)
    assert len(cases) > 500


def test_the_pages_units_are_the_clis(console: Console) -> None:
    units = console.page.evaluate("async () => (await import('./static/units.js')).UNITS")
    assert {u: [d, pytest.approx(f, rel=1e-12)] for u, (d, f) in UNITS.items()} == units


def test_the_page_follows_the_service_through_a_restart(console: Console) -> None:
    """kill -9 the service and start it again: the page reconnects by itself, marks the new run
    in its events, and commands again through it (FOP-1 and SDLS resumed by the service)."""
    c = console
    send_and_wait(c, "PING")  # a history to keep, whichever tests ran before
    history = c.page.locator("#cmd-history li").count()
    last_id = max(int(i) for i in c.page.locator("#cmd-history li").evaluate_all("els => els.map(e => e.dataset.id)"))
    c.service.kill()
    c.service.wait()
    c.page.wait_for_selector("#ws-state[data-state='closed']")
    restarted = time.time()
    c.service = c.restart()
    c.page.wait_for_selector("#ws-state[data-state='open']")
    c.page.wait_for_function("t => Number(document.querySelector('#tm-table').dataset.t) > t", arg=restarted)
    assert c.page.locator("#ev-table tr.restart").count() == 1
    assert c.page.locator("#cmd-history li").count() == history  # the service kept its command log
    ping = send_and_wait(c, "PING")
    assert ping["outcome"] == "COMPLETED" and int(ping["id"]) == last_id + 1


@pytest.mark.skipif(not SCREENSHOTS, reason="FARSIDE_SCREENSHOTS=DIR writes the README's screenshots")
def test_screenshots(console: Console) -> None:
    c = console
    out = Path(SCREENSHOTS or "docs")
    if not out.is_absolute():
        out = ROOT / out
    out.mkdir(parents=True, exist_ok=True)
    for name, args in (("TURN", {"angle_deg": "30"}), ("DRIVE_DISTANCE", {"distance_m": "0.6", "speed_mph": "200"}),
                       ("TURN", {"angle_deg": "-60deg"}), ("DRIVE_DISTANCE", {"distance_m": "40cm", "speed_mph": "200"})):
        assert send_and_wait(c, name, **args)["outcome"] == "COMPLETED"
    # a slope under the rover: its pitch past the warning limit
    assert send_and_wait(c, "SIM_INJECT", fault="SLOPE_DEG", wheel="0", value="17")["outcome"] == "COMPLETED"
    c.page.wait_for_selector("#tm-table tr[data-name='pitch_deg'][data-limit='warning']")
    c.page.locator("#tm-table tr[data-name='battery_pct'] input").uncheck()
    for box in ("wheel1_current_a", "heading_deg", "pitch_deg"):
        c.page.locator(f"#tm-table tr[data-name='{box}'] input").check()
    c.page.select_option("#cmd-name", "DRIVE_DISTANCE")
    c.page.fill("#arg-distance_m", "250")
    c.page.fill("#arg-speed_mph", "5km/h")
    c.page.click("#cmd-send")
    time.sleep(1.5)  # two more HK on the plots
    c.page.screenshot(path=str(out / "console-overview.png"))
    form = c.page.locator("#command").bounding_box()
    history = c.page.locator("#commands").bounding_box()
    assert form is not None and history is not None
    c.page.screenshot(path=str(out / "console-command.png"), clip={
        "x": form["x"], "y": form["y"], "width": form["width"],
        "height": history["y"] + history["height"] - form["y"]})
