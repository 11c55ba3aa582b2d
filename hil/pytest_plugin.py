"""farside's pytest plugin: one HIL test suite for virtual and real rovers.

Write a test once against the fixtures and run it on any target:

    def test_first_drive(rover, plant):
        rover.send_and_assert_command("MODE_SET", mode="STANDBY")
        rover.send_and_assert_command("DRIVE_DISTANCE", distance_m=5, speed_mph=200, timeout=600)
        rover.await_telemetry("odometer_m", greater_than(4.9), timeout=30)

Options:
  --farside-target virtual | mpy | pico-emu | serial:PORT
      virtual (default): the CPython firmware with the sim HAL, the relay and the ground
      on one virtual-time loop (hil.mission.loop): an hour of rover time in seconds,
      deterministic for a seed. mpy: the real MicroPython unix port as a virtual board
      (hil.board) in real time: started and flashed once per session (per xdist worker),
      reset before each test so every test meets a freshly booted rover. serial:PORT: a
      real board on a serial port, real time (flashed once with --farside-flash).
      pico-emu: the emulated Pico (hil.mission.chip): the stock MicroPython rp2 firmware on
      an emulated RP2040, flashed once per session with `farside flash`, the rover's
      hardware at its pins; ground, relay and plant follow the chip's clock, so timeouts
      are chip seconds. Its board defaults to pico.
  --farside-board NAME       board definition (default sim)
  --farside-relay PROFILE    relay profile or file: queqiao (virtual default), lab (real-time
                             default), harsh, or none (ground wired straight to the rover)
  --farside-flash            flash the firmware to the target before the session (mpy, serial)
  --farside-seed N | A..B    seed of the run; a range makes tests that take `farside_seed`
                             run once per seed (fault campaigns)

Fixtures:
  rover   hil.mission.api.RoverApi: send_and_assert_command, send_and_await_event,
          await_telemetry(name, predicate, timeout), assert_event, await_mode, ...
          Timeouts are rover seconds. Each test is a test case: `rover.events` and
          `assert_*` see only what arrived during it; `rover.history` has everything.
  relay   hil.mission.api.RelayControl: outage(duration_s), set_ber, set_delay, ...
  plant   hil.mission.api.PlantControl: jam_wheel(3), slope(25), rock_ahead(1.0), ...
          Skips with a reason where the target has no simulated plant.
  farside_target  the harness itself (ground, relay model, the in-process rover's hal).
  farside_seed    (campaigns) the seed of this run; parametrised over --farside-seed
                  (default 1..3), with `farside_campaign.record(...)` for the outcome table.

Marks: `@pytest.mark.farside_targets("virtual", "mpy")` limits a test to those targets
(others skip with the reason); `hil` marks a HIL scenario.

On failure the report gains a "farside" section: the last telemetry, the event log and
the link counters. Every test's archive is kept under pytest's base temp folder
(`<basetemp>/farside/<test>/archive`) and can be replayed with `farside gs replay`.

Parallel runs (pytest-xdist): each worker builds its own targets, so `-n auto` just works
on the virtual target. For a bench of boards give one port per worker, either as a list
(`--farside-target serial:/dev/ttyACM0,/dev/ttyACM1` with `-n 2`: worker gwN takes the
N-th port) or a pattern (`serial:/dev/ttyACM{worker}`); `mpy` starts one virtual board per
worker. Each worker then owns one target for the whole session.

Campaigns over workers and machines: `farside_campaign.record(...)` puts each seed's outcome
into the test's report (`user_properties`), and the controller merges what every worker
reports into one table, sorted by seed, and one `<basetemp>/farside/campaign.json`: the same
table whatever the number of workers (`-n auto`, `-n 2` or none).
Other machines join through xdist's remote workers (xdist 3.8 still has `--tx socket=` and
`--tx ssh=`; only its `--rsyncdir` copying is deprecated, to go in xdist 4). Each machine
needs the same checkout and environment, with the checkout on PYTHONPATH; there, per worker:

    PYTHONPATH=/srv/farside python -m execnet.script.socketserver 0.0.0.0:8888

(or `--tx ssh=user@host//python=...` with the same). On the controller, from outside the
checkout (xdist rewrites test paths that exist locally for rsync, so name the tests as a
module; the workers import it from their checkout), each worker in a scratch folder
(`chdir`: xdist copies pytest itself there, so never the checkout), all on one line:

    pytest --pyargs tests.hil.test_campaign -k outage_campaign --farside-seed 1..200
        --dist load --tx socket=hostA:8888//chdir=/tmp/fs-w --tx socket=hostB:8888//chdir=/tmp/fs-w

tests/hil/test_campaign.py runs exactly this with two workers over loopback.

This module is loaded in every pytest run of the repository (pytest11 entry point): it
imports nothing heavy at module level and does nothing unless a test uses its fixtures.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_HARNESS_KEY = pytest.StashKey[Any]()
_CAMPAIGN_KEY = pytest.StashKey[list[dict[str, Any]]]()
_FLASHED: set[str] = set()
DEFAULT_CAMPAIGN = (1, 2, 3)  # seeds of a campaign when --farside-seed is not given
_API_KEY = pytest.StashKey[Any]()


@dataclass(frozen=True)
class FarsideOptions:
    target: str  # "virtual" | "mpy" | "serial"
    port: str | None
    board: str
    relay: str
    flash: bool
    seeds: tuple[int, ...]
    campaign_seeds: tuple[int, ...]

    @property
    def seed(self) -> int:
        return self.seeds[0]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("farside", "farside hardware-in-the-loop")
    group.addoption(
        "--farside-target",
        default="virtual",
        help="virtual (CPython rover, virtual time) | mpy (MicroPython virtual board, "
        "real time) | pico-emu (emulated RP2040, chip time) | serial:PORT (a real board). Default: virtual.",
    )
    group.addoption("--farside-board", default=None, help="board definition (default: sim; pico for pico-emu)")
    group.addoption(
        "--farside-relay",
        default=None,
        help="relay profile or file: queqiao (virtual default), lab (real-time default), harsh, none",
    )
    group.addoption("--farside-flash", action="store_true", default=False, help="flash the target first")
    group.addoption("--farside-seed", default=None, help="seed (int) or seed range A..B for campaigns")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_CampaignCollector(config), "farside-campaign")
    config.addinivalue_line("markers", "hil: a hardware-in-the-loop scenario")
    config.addinivalue_line(
        "markers", "farside_targets(*names): run only on these farside targets (virtual, mpy, pico-emu, serial)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    marked = [(it, m) for it in items if (m := it.get_closest_marker("farside_targets")) is not None]
    if not marked:
        return
    target = farside_options(config).target
    for item, marker in marked:
        if target not in marker.args:
            item.add_marker(pytest.mark.skip(reason=f"runs on farside targets {', '.join(marker.args)}, not {target}"))


def _worker_index() -> int:
    m = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
    return int(m.group(1)) if m else 0


def farside_options(config: pytest.Config) -> FarsideOptions:
    """The parsed --farside-* options (errors are usage errors)."""
    from hil.errors import FarsideError
    from hil.mission.seeds import parse_seeds

    raw = str(config.getoption("--farside-target"))
    port = None
    if raw.startswith("serial:"):
        target = "serial"
        ports = raw[len("serial:"):].split(",")
        i = _worker_index()
        if len(ports) > 1:
            if i >= len(ports):
                raise pytest.UsageError(f"--farside-target: worker gw{i} has no port in {raw!r}")
            port = ports[i]
        else:
            port = ports[0].replace("{worker}", str(i))
        if not port:
            raise pytest.UsageError("--farside-target serial:PORT needs a port")
    elif raw in ("virtual", "mpy", "pico-emu"):
        target = raw
    else:
        raise pytest.UsageError(f"--farside-target: expected virtual, mpy, pico-emu or serial:PORT, got {raw!r}")
    relay = config.getoption("--farside-relay") or ("queqiao" if target == "virtual" else "lab")
    given = config.getoption("--farside-seed")
    try:
        seeds = tuple(parse_seeds(given))
    except FarsideError as exc:
        raise pytest.UsageError(f"--farside-seed: {exc}") from None
    board = config.getoption("--farside-board") or ("pico" if target == "pico-emu" else "sim")
    return FarsideOptions(
        target, port, str(board), str(relay),
        bool(config.getoption("--farside-flash")), seeds, seeds if given else DEFAULT_CAMPAIGN,
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # a campaign: tests taking `farside_seed` run once per seed of --farside-seed
    if "farside_seed" in metafunc.fixturenames:
        opts = farside_options(metafunc.config)
        seeds = list(opts.campaign_seeds)
        metafunc.parametrize("farside_seed", seeds, ids=[f"seed{s}" for s in seeds])


@pytest.fixture(scope="session")
def farside_options_fixture(pytestconfig: pytest.Config) -> FarsideOptions:
    return farside_options(pytestconfig)


def _safe_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1])[:80]


@pytest.fixture
def farside_target(
    request: pytest.FixtureRequest, farside_options_fixture: FarsideOptions, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """The harness for this test: ground + relay + rover on the selected target."""
    opts = farside_options_fixture
    seed = request.getfixturevalue("farside_seed") if "farside_seed" in request.fixturenames else opts.seed
    folder = tmp_path_factory.getbasetemp() / "farside" / _safe_name(request.node.nodeid)
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    vb = request.getfixturevalue("farside_virtual_board") if opts.target == "mpy" else None
    if opts.target == "pico-emu":
        vb = request.getfixturevalue("farside_pico_image")
    harness = _make_harness(opts, seed, folder, vb)
    request.node.stash[_HARNESS_KEY] = harness
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture(scope="session")
def farside_virtual_board(farside_options_fixture: FarsideOptions, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One flashed MicroPython virtual board per session (per xdist worker), for --farside-target mpy."""
    from hil.errors import FarsideError

    try:
        from hil.mission.realtime import start_flashed_board

        vb = start_flashed_board(farside_options_fixture.board, tmp_path_factory.mktemp("farside-board"))
    except (FarsideError, ImportError, OSError) as exc:
        pytest.skip(f"the mpy target is not available: {exc}")
    try:
        yield vb
    finally:
        vb.stop()


@pytest.fixture(scope="session")
def farside_pico_image(farside_options_fixture: FarsideOptions, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The flash image of an emulated Pico flashed once per session (per xdist worker) with
    `farside flash`, for --farside-target pico-emu; each test boots a copy of it."""
    from hil.errors import FarsideError
    from hil.mission.chip import flashed_image

    try:
        return flashed_image(tmp_path_factory.mktemp("farside-pico"), board=farside_options_fixture.board)
    except (FarsideError, OSError) as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"the pico-emu target is not available: {exc}")


def _make_harness(opts: FarsideOptions, seed: int, folder: Path, virtual_board: Any = None) -> Any:
    from hil.errors import FarsideError

    if opts.target == "pico-emu":
        from hil.mission.chip import ChipTarget

        assert isinstance(virtual_board, Path)
        return ChipTarget(virtual_board, opts.relay, seed, folder, board=opts.board)
    if opts.target == "virtual":
        from hil.mission.loop import LoopConfig, WholeLoop

        return WholeLoop(LoopConfig(seed=seed, relay=opts.relay, board=opts.board, folder=folder))
    try:
        from hil.mission.realtime import open_realtime_target
    except ImportError as exc:  # pragma: no cover - only without the real-time pieces
        pytest.skip(f"the {opts.target} target is not available here: {exc}")
    try:
        if virtual_board is not None:
            from hil.mission.realtime import reset_board

            reset_board(virtual_board)  # each test meets a freshly booted rover
        flash = opts.flash and opts.port not in _FLASHED  # flash a real board once per session
        target = open_realtime_target(
            opts.target, opts.port, opts.board, opts.relay, seed, folder, flash=flash, virtual_board=virtual_board
        )
        if flash and opts.port:
            _FLASHED.add(opts.port)
        return target
    except FarsideError as exc:
        pytest.skip(f"the {opts.target} target is not available: {exc}")


@pytest.fixture
def rover(request: pytest.FixtureRequest, farside_target: Any) -> Any:
    """F Prime style API on the target (hil.mission.api.RoverApi), one test case per test."""
    from hil.mission.api import RoverApi

    api = RoverApi(farside_target)
    api.start_test_case(request.node.name)
    request.node.stash[_API_KEY] = api
    return api


@pytest.fixture
def relay(farside_target: Any) -> Any:
    """Control of the relay's link conditions (skips when the target runs without a relay)."""
    from hil.mission.api import RelayControl

    if farside_target.relay is None:
        pytest.skip("needs a relay between ground and rover (--farside-relay is none)")
    return RelayControl(farside_target)


@pytest.fixture
def plant(farside_target: Any, rover: Any, farside_options_fixture: FarsideOptions) -> Any:
    """Fault injection into the simulated plant (skips on hardware without the sim HAL)."""
    from hil.mission.api import PlantControl

    if farside_target.hal is None and farside_options_fixture.board != "sim":
        pytest.skip(f"fault injection needs a simulated plant; board {farside_options_fixture.board} has real motors")
    return PlantControl(farside_target, rover)


CAMPAIGN_PROPERTY = "farside_campaign"  # user_properties key of a run's outcome (JSON text)


class Campaign:
    """A campaign run's outcome, recorded into the test's report.

    The outcome travels as a `user_properties` entry of the test's reports, so it reaches
    the session that prints the summary however the tests ran: in process, in local
    pytest-xdist workers (`-n auto`) or in remote ones (`--tx socket=HOST:PORT`, `--tx
    ssh=...`); the controller merges every worker's outcomes into one table, sorted by seed.
    """

    def __init__(self, node: pytest.Item) -> None:
        self.node = node

    def record(self, **outcome: Any) -> None:
        import json

        # JSON text: crosses execnet whatever the values (numpy numbers, paths) are
        self.node.user_properties.append((CAMPAIGN_PROPERTY, json.dumps(outcome, default=str)))


@pytest.fixture
def farside_campaign(request: pytest.FixtureRequest) -> Campaign:
    """Record a campaign run's outcome: `farside_campaign.record(seed=3, outcome="survived", ...)`."""
    assert isinstance(request.node, pytest.Item)
    return Campaign(request.node)


class _CampaignCollector:
    """Gathers the outcomes from the reports: the controller (or the only process) sees every
    test's reports, from whichever worker ran it."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "teardown":
            return
        outcomes = [v for k, v in report.user_properties if k == CAMPAIGN_PROPERTY]
        if outcomes:
            import json

            store = self.config.stash.setdefault(_CAMPAIGN_KEY, [])
            store += [{**json.loads(str(v)), "_node": report.nodeid} for v in outcomes]


def campaign_table(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The merged outcomes in one order whatever the workers' finishing order: by seed, then test."""
    rows = sorted(outcomes, key=lambda o: (str(o.get("_node", "")).split("[")[0], _seed_key(o.get("seed")),
                                           str(o.get("_node", ""))))
    return [{k: v for k, v in o.items() if k != "_node"} for o in rows]


def _seed_key(seed: Any) -> tuple[int, str]:
    return (int(seed), "") if isinstance(seed, int) else (1 << 62, str(seed))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    outcomes = campaign_table(config.stash.get(_CAMPAIGN_KEY, []))
    if not outcomes:
        return
    import json
    from collections import Counter

    tr = terminalreporter
    tr.section("farside fault campaign")
    keys = list(dict.fromkeys(k for o in outcomes for k in o))
    tr.write_line("  ".join(f"{k:>12}" for k in keys))
    for o in outcomes:
        tr.write_line("  ".join(f"{_cell(o.get(k)):>12}" for k in keys))
    counts = Counter(str(o.get("outcome", "?")) for o in outcomes)
    tr.write_line(f"{len(outcomes)} runs: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    try:
        path = config._tmp_path_factory.getbasetemp() / "farside" / "campaign.json"  # type: ignore[attr-defined]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(outcomes, indent=1, default=str))
        tr.write_line(f"outcomes: {path}")
    except (AttributeError, OSError):
        pass


def _cell(v: Any) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    harness = item.stash.get(_HARNESS_KEY, None)
    if harness is None:
        return report
    if report.when == "call" and report.failed:
        api = item.stash.get(_API_KEY, None)
        if api is not None:
            try:
                text = api.failure_report()
            except Exception as exc:  # the report must never hide the real failure
                text = f"(no farside report: {type(exc).__name__}: {exc})"
            report.sections.append(("farside: rover at failure", text))
    if report.when == "teardown":
        report.sections.append(("farside", f"archive: {harness.archive_path}"))
    return report
