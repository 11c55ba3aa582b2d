"""An independent ground for the rover's link security: TC frames secured with the
`cryptography` package (AES-256-GCM, GMAC) or the standard library (legacy HMAC), laid out
per CCSDS 355.0-B-2 as firmware_py/sdls.py documents, and a rig that drives the CPython
rover (sim HAL, virtual time) with them, records what it sent, and replays it as an
attacker would.

The project's own ground (protocols/sdls.py) is not used here, so the rover is checked
against code it does not share.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import struct
from binascii import crc_hqx
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocols.stream import frame_tc
from tests.rover.ground import _T, DICT, EVENT_IDS, RoverRig

KEY = bytes(range(32))
LEGACY_KEY = bytes(range(100, 132))
MASTER = bytes(range(200, 232))
NEW_KEY = bytes(range(50, 82))
SCID = 171
TC_MASK = bytes.fromhex("0000fc0000")
TM_MASK = bytes.fromhex("000e00000000")
MAX_ARSN = 0xFFFFFFFF


def masked(header: bytes, mask: bytes) -> bytes:
    return bytes(a & b for a, b in zip(header, mask, strict=True))


def arsn_iv(seq: int, high: bytes = bytes(8)) -> bytes:
    """The IV of an ARSN: 96-bit big-endian counter, IV[0:8] zero (the rover's rule)."""
    return high + struct.pack(">I", seq)


def tc_header(bypass: bool, control: bool, vcid: int, ns: int, total: int, scid: int = SCID) -> bytes:
    ln = total - 1
    return bytes(
        [
            (int(bypass) << 5) | (int(control) << 4) | ((scid >> 8) & 3),
            scid & 0xFF,
            ((vcid & 0x3F) << 2) | ((ln >> 8) & 3),
            ln & 0xFF,
            ns & 0xFF,
        ]
    )


def with_fecf(frame: bytes) -> bytes:
    c = crc_hqx(frame, 0xFFFF)
    return frame + bytes([c >> 8, c & 0xFF])


def secure_tc(
    suite: str,
    key: bytes,
    spi: int,
    seq: int,
    data: bytes,
    bypass: bool = False,
    control: bool = False,
    ns: int = 0,
    vcid: int = 1,
    iv_high: bytes = bytes(8),
) -> bytes:
    """A whole secured TC frame (FECF included)."""
    if suite == "hmac-sha256":
        total = 5 + 6 + len(data) + 16 + 2
        hdr = tc_header(bypass, control, vcid, ns, total)
        sec = struct.pack(">HI", spi, seq)
        mac = hmac.new(key, hdr + sec + data, hashlib.sha256).digest()[:16]
        return with_fecf(hdr + sec + data + mac)
    total = 5 + 14 + len(data) + 16 + 2
    hdr = tc_header(bypass, control, vcid, ns, total)
    iv = arsn_iv(seq, iv_high)
    aad = masked(hdr, TC_MASK) + struct.pack(">H", spi) + bytes(12)
    if suite == "aes-gcm":
        body = AESGCM(key).encrypt(iv, data, aad)
    elif suite == "gmac":
        body = data + AESGCM(key).encrypt(iv, b"", aad + data)
    else:
        raise ValueError(suite)
    return with_fecf(hdr + struct.pack(">H", spi) + iv + body)


def open_tc(suite: str, key: bytes, frame: bytes) -> tuple[int, int, bytes]:
    """(spi, seq, data) of a secured TC frame, checked by `cryptography` (raises on a bad tag)."""
    assert crc_hqx(frame, 0xFFFF) == 0
    hdr, spi = frame[:5], struct.unpack(">H", frame[5:7])[0]
    body = frame[19:-2]
    iv = frame[7:19]
    aad = masked(hdr, TC_MASK) + frame[5:7] + bytes(12)
    if suite == "aes-gcm":
        data = AESGCM(key).decrypt(iv, body, aad)
    else:
        data = body[:-16]
        AESGCM(key).decrypt(iv, body[-16:], aad + data)
    return spi, struct.unpack(">I", iv[8:])[0], data


def open_tm(suite: str, key: bytes, frame: bytes) -> tuple[int, int, bytes]:
    """(spi, TM ARSN, plain frame of the shorter layout) of a secured TM frame."""
    assert crc_hqx(frame, 0xFFFF) == 0
    hdr, spi, iv = frame[:6], frame[6:8], frame[8:20]
    body, ocf = frame[20:-6], frame[-6:-2]
    aad = masked(hdr, TM_MASK) + spi + bytes(12)
    if suite == "aes-gcm":
        data = AESGCM(key).decrypt(iv, body, aad)
    else:
        data = body[:-16]
        AESGCM(key).decrypt(iv, body[-16:], aad + data)
    plain = hdr + data + ocf
    return struct.unpack(">H", spi)[0], struct.unpack(">I", iv[8:])[0], with_fecf(plain)


def wrap_key(master: bytes, key_id: int, new_key: bytes, iv: bytes) -> tuple[bytes, bytes]:
    """KEY_OTAR's wrapped key and MAC: AES-256-GCM under the master key, AAD = key id u16."""
    out = AESGCM(master).encrypt(iv, new_key, struct.pack(">H", key_id))
    return out[:32], out[32:]


def key_file(suite: str = "aes-gcm", master: bytes | None = MASTER, tm_spi: int = 0) -> dict[str, Any]:
    """The new key file form: the SA under test on SPI 1 (key id 1), a legacy SA on SPI 7."""
    d: dict[str, Any] = {
        "sas": {
            "1": {"suite": suite, "key": KEY.hex(), "key_id": 1},
            "7": {"suite": "hmac-sha256", "key": LEGACY_KEY.hex(), "key_id": 7},
        },
        "tm_spi": tm_spi,
    }
    if master is not None:
        d["master"] = master.hex()
    return d


def make_sec_root(path: Path, keys: dict[str, Any]) -> str:
    path.mkdir(parents=True, exist_ok=True)
    canon = json.dumps(DICT, sort_keys=True, separators=(",", ":")).encode()
    (path / "dictionary.json").write_bytes(canon)
    (path / "keys.json").write_text(json.dumps(keys))
    return str(path)


@dataclass
class SecRig(RoverRig):
    """RoverRig with this module's secured frames, a record of every frame sent, resets of
    every kind, and the ground's ARSN resync from SA_STATUS."""

    suite: str = "aes-gcm"
    key: bytes = KEY
    spi: int = 1
    tm_suite: str | None = None  # TM authentication on: the suite of the TM SA
    next_arsn: int = 1
    sent_frames: list[bytes] = field(default_factory=list)
    tm_arsns: list[int] = field(default_factory=list)

    def packet(self, name: str, *values: Any, tail: bytes = b"", ack: int = 0xF) -> bytes:
        """A TC packet; bytes arguments (KEY_OTAR) packed as raw octets."""
        from protocols.pus import build_tc_packet
        from tests.rover.ground import CMDS

        c = CMDS[name]
        codes = "".join(
            f"{a['length']}s" if a["type"] == "bytes" else _T[a["type"]] for a in c["args"] if a["type"] != "tc"
        )
        self.tc_seq += 1
        data = struct.pack(">" + codes, *values) + tail
        return build_tc_packet(1, self.tc_seq & 0x3FFF, c["service"], c["subservice"], data, ack)

    def frame(self, pkt: bytes, bypass: bool = False, control: bool = False) -> bytes:
        seq = self.next_arsn
        assert seq <= MAX_ARSN, "the ground never sends beyond 2^32 - 1"
        self.next_arsn += 1
        ns = 0 if bypass else self.vs & 0xFF
        if not bypass:
            self.vs += 1
        return secure_tc(self.suite, self.key, self.spi, seq, pkt, bypass, control, ns)

    def send_packet(self, pkt: bytes, bypass: bool = False) -> tuple[int, int]:  # type: ignore[override]
        self.inject(self.frame(pkt, bypass))
        return struct.unpack(">HH", pkt[:4])  # type: ignore[return-value]

    def send(self, name: str, *values: Any, tail: bytes = b"", bypass: bool = False) -> tuple[int, int]:  # type: ignore[override]
        return self.send_packet(self.packet(name, *values, tail=tail), bypass)

    def set_vr(self, vr: int = 0) -> None:
        """BC Set V(R) (a Type-BC frame, fresh ARSN) and V(S) to match: COP-1 resynchronised."""
        self.inject(secure_tc(self.suite, self.key, self.spi, self.next_arsn, bytes([0x82, 0, vr]), True, True))
        self.next_arsn += 1
        self.vs = vr

    def inject(self, frame: bytes) -> None:
        """Octets onto the uplink as they are (the attacker's way in, and the ground's)."""
        self.sent_frames.append(frame)
        self.ground_link.write(frame_tc(frame))

    def resync(self) -> None:
        """The ground's rule: next ARSN = max(next, reported + 1) from SA_STATUS and HK."""
        for _, (spi, mark, _kid) in self.events("SA_STATUS"):
            if spi == self.spi:
                self.next_arsn = max(self.next_arsn, mark + 1)

    def pump(self) -> None:
        if self.tm_suite is None:
            super().pump()
            return
        from protocols.pus import parse_tm_packet
        from protocols.tm_frame import parse_tm_frame
        from tests.rover.ground import Tm

        n = self.ground_link.read_into(self._buf)
        if not n:
            return
        now = asyncio.get_running_loop().time()
        for fr in self.deframer.feed(bytes(self._buf[:n])):
            spi, seq, plain = open_tm(self.tm_suite, self.key, fr)
            assert spi == self.spi
            self.tm_arsns.append(seq)
            tf = parse_tm_frame(plain)
            for p in self.demux.feed_parsed(tf):
                tm = parse_tm_packet(p)
                self.tm.append(Tm(tm.service, tm.subservice, tm.data, now))

    async def run(self, script: Any, max_boots: int = 20) -> Any:
        """As RoverRig.run, with self.task the rover's current power-supply task (a power
        cut replaces it)."""
        from firmware_py.app import run_forever

        self.task = asyncio.create_task(run_forever(self.board, self.hal, self.root, None, self.rovers.append, max_boots))
        await asyncio.sleep(0.5)
        try:
            return await script(self)
        finally:
            task = self.task
            if task.done() and not task.cancelled():
                task.result()  # the rover's own exception, if it died
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    # -- resets --
    async def until_boots(self, n: int, timeout_s: float = 30.0) -> None:
        ok = await self.wait_for(lambda: len(self.rovers) >= n and len(self.events("BOOT")) >= n, timeout_s)
        assert ok, f"the rover did not boot {n} times"

    async def power_cut(self) -> None:
        """The supply goes off and on: the rover stops wherever it is, its flash folder
        and the plant stay."""
        from firmware_py.app import run_forever
        from firmware_py.hal import RESET_POWER_ON

        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
        self.hal._cause = RESET_POWER_ON  # noqa: SLF001 - the board's reset cause register
        self.task = asyncio.create_task(run_forever(self.board, self.hal, self.root, None, self.rovers.append, 20))

    def auth_events(self) -> list[tuple[str, tuple[Any, ...]]]:
        return [e for e in self.events() if e[0] in ("TC_AUTH_REJECTED", "TC_AUTH_SUMMARY")]


AUTH_EVENT = EVENT_IDS["TC_AUTH_REJECTED"]
