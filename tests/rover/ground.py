"""A minimal ground for rover tests: the real ground codec (protocols/) on an in-memory link.

`RoverRig` runs a CPython rover (sim HAL) on a virtual-time asyncio loop: commands go
up as authenticated Type-AD frames, TM comes down through the TM deframer and packet
demultiplexer, and every packet is decoded with the dictionary.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware_py.hal import link_pair
from firmware_py.hal.sim import SimHal
from protocols.pus import build_tc_packet, parse_tm_packet
from protocols.sdls import SecuritySender
from protocols.stream import TmDeframer, frame_tc
from protocols.tc_frame import build_ad_frame
from protocols.tm_frame import TmDemultiplexer, parse_tm_frame

ROOT = Path(__file__).resolve().parents[2]
DICT_PATH = ROOT / "protocols" / "dictionary.json"
KEY = bytes(range(32))
SCID = 171
TC_VCID = 1

DICT: dict[str, Any] = json.loads(DICT_PATH.read_text())
CMDS = {c["name"]: c for c in DICT["commands"]}
EVENTS = {e["id"]: e for e in DICT["events"]}
EVENT_IDS = {e["name"]: e["id"] for e in DICT["events"]}
FAIL = {v["name"]: int(k) for k, v in DICT["failure_codes"].items()}
_T = {"u8": "B", "i8": "b", "u16": "H", "i16": "h", "u32": "I", "i32": "i", "f32": "f"}
HK_NAMES = [p["name"] for p in DICT["housekeeping"][0]["parameters"]]
HK_FMT = ">H" + "".join(_T[p["type"]] for p in DICT["housekeeping"][0]["parameters"])


def load_board(name: str = "sim") -> dict[str, Any]:
    path = ROOT / "boards" / f"{name}.json"
    if path.exists():
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    return {}


def make_root(path: Path) -> str:
    """A rover root folder: canonical dictionary bytes and the key file."""
    path.mkdir(parents=True, exist_ok=True)
    canon = json.dumps(DICT, sort_keys=True, separators=(",", ":")).encode()
    (path / "dictionary.json").write_bytes(canon)
    (path / "keys.json").write_text(json.dumps({"keys": {"1": KEY.hex()}}))
    return str(path)


def encode_args(name: str, *values: Any, tail: bytes = b"") -> bytes:
    args = [a for a in CMDS[name]["args"] if a["type"] != "tc"]
    return struct.pack(">" + "".join(_T[a["type"]] for a in args), *values) + tail


@dataclass
class Tm:
    service: int
    subservice: int
    data: bytes
    time: float


@dataclass
class RoverRig:
    root: str
    board: dict[str, Any] = field(default_factory=lambda: load_board("sim"))
    seed: int = 1

    def __post_init__(self) -> None:
        self.rover_link, self.ground_link = link_pair(1 << 20)
        self.hal = SimHal(self.board, self.rover_link, self.seed)
        self.sender = SecuritySender(KEY)
        self.vs = 0
        self.tc_seq = 0
        self.tm: list[Tm] = []
        self.deframer = TmDeframer()
        self.demux = TmDemultiplexer()
        self.rovers: list[Any] = []
        self._buf = bytearray(65536)
        self.clcws: list[int] = []

    @property
    def rover(self) -> Any:
        return self.rovers[-1]

    # -- uplink --
    def packet(self, name: str, *values: Any, tail: bytes = b"", ack: int = 0xF) -> bytes:
        c = CMDS[name]
        self.tc_seq += 1
        return build_tc_packet(1, self.tc_seq & 0x3FFF, c["service"], c["subservice"], encode_args(name, *values, tail=tail), ack)

    def resync(self) -> None:
        """The ground's ARSN rule: next = max(next, mark + 1) from the rover's SA_STATUS events
        (the rover refuses every number at or below its persisted mark after a reset)."""
        for t in self.tm:
            if t.service == 5 and t.data[:2] == b"\x00\x1e":  # SA_STATUS (id 30)
                spi, mark = struct.unpack(">HI", t.data[2:8])
                if spi == self.sender.spi and mark + 1 > self.sender.seq:
                    self.sender.seq = mark + 1

    def send_packet(self, pkt: bytes) -> tuple[int, int]:
        self.resync()
        frame = build_ad_frame(SCID, TC_VCID, self.vs & 0xFF, pkt, self.sender)
        self.vs += 1
        self.ground_link.write(frame_tc(frame))
        return struct.unpack(">HH", pkt[:4])  # type: ignore[return-value]

    def send(self, name: str, *values: Any, tail: bytes = b"") -> tuple[int, int]:
        return self.send_packet(self.packet(name, *values, tail=tail))

    # -- downlink --
    def pump(self) -> None:
        n = self.ground_link.read_into(self._buf)
        if not n:
            return
        now = asyncio.get_running_loop().time() if _loop_running() else 0.0
        for fr in self.deframer.feed(bytes(self._buf[:n])):
            tf = parse_tm_frame(fr)
            if tf.clcw is not None:
                self.clcws.append(tf.clcw)
            for p in self.demux.feed_parsed(tf):
                tm = parse_tm_packet(p)
                self.tm.append(Tm(tm.service, tm.subservice, tm.data, now))

    def events(self, name: str | None = None) -> list[tuple[str, tuple[Any, ...]]]:
        out = []
        for t in self.tm:
            if t.service == 5 and 1 <= t.subservice <= 4:
                eid = struct.unpack(">H", t.data[:2])[0]
                ev = EVENTS[eid]
                fmt = ">" + "".join(_T[a["type"]] for a in ev["args"])
                args = struct.unpack(fmt, t.data[2:])
                if name is None or ev["name"] == name:
                    out.append((ev["name"], args))
        return out

    def reports(self, req: tuple[int, int]) -> list[tuple[int, int | None]]:
        """(subservice, failure code or None) of the service 1 reports for a request."""
        out: list[tuple[int, int | None]] = []
        for t in self.tm:
            if t.service == 1 and struct.unpack(">HH", t.data[:4]) == tuple(req):
                out.append((t.subservice, struct.unpack(">H", t.data[4:6])[0] if len(t.data) >= 6 else None))
        return out

    def hk(self) -> dict[str, Any]:
        for t in reversed(self.tm):
            if t.service == 3 and t.subservice == 25:
                return dict(zip(HK_NAMES, struct.unpack(HK_FMT, t.data)[1:], strict=True))
        raise AssertionError("no HK received")

    # -- running --
    async def _pump_task(self) -> None:
        while True:
            self.pump()
            await asyncio.sleep(0.05)

    async def wait_for(self, cond: Callable[[], bool], timeout_s: float) -> bool:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        while loop.time() < end:
            self.pump()
            if cond():
                return True
            await asyncio.sleep(0.1)
        self.pump()
        return cond()

    async def run(self, script: Callable[[RoverRig], Any], max_boots: int = 10) -> Any:
        from firmware_py.app import run_forever

        result: list[Any] = []

        async def main() -> None:
            task = asyncio.create_task(
                run_forever(self.board, self.hal, self.root, None, self.rovers.append, max_boots)
            )
            self.task = task
            await asyncio.sleep(0.5)
            try:
                result.append(await script(self))
            finally:
                if task.done():
                    task.result()  # the rover's own exception, if it died
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass

        await main()
        return result[0] if result else None


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


def run_vt(rig: RoverRig, script: Callable[[RoverRig], Any], max_boots: int = 10) -> Any:
    """Run a rig script on the virtual-time loop (hil.vclock)."""
    from hil import vclock

    return vclock.run(rig.run(script, max_boots))
