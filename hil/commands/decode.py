"""`farside decode`: print every layer of a capture or a hex string.

Input: a hex string, or a file holding a binary capture: a stream of ASM-framed TM frames
(1ACFFC1D) or EB90-framed TC frames, a single TC or TM frame, or a bare space packet.
Layers: frame header (+ CLCW), security header, space packet header, PUS header, then the
command or telemetry named from the dictionary with values and units.
"""

from __future__ import annotations

import json
import string
import sys
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from hil.errors import FarsideError
from protocols.clcw import decode_clcw
from protocols.cltu import CltuDeframer
from protocols.cuc import Cuc
from protocols.dictionary import Decoded, Dictionary, load_dictionary
from protocols.errors import AuthError, DictionaryError, ProtocolError
from protocols.pus import TC_OVERHEAD, parse_tc_packet, parse_tm_packet
from protocols.sdls import AuthReason, FrameAuthenticator, KeyStore
from protocols.spacepacket import IDLE_APID, TYPE_TC, parse_primary_header
from protocols.stream import ASM, TC_START, TcDeframer, TmDeframer
from protocols.tc_frame import (
    GCM_SECURITY_HEADER_LENGTH,
    MAC_LENGTH,
    SECURITY_HEADER_LENGTH,
    FrameType,
    TcFrame,
    frame_length_from_header,
    parse_control_command,
    parse_tc_frame,
)
from protocols.tm_frame import (
    FHP_IDLE,
    FHP_NO_PACKET_START,
    TmDemultiplexer,
    TmFrame,
    parse_tm_frame,
)

Layer = dict[str, Any]
Item = dict[str, Any]


# --- input -----------------------------------------------------------------------------------

def read_input(source: str) -> bytes:
    """Bytes of a file ("-" = standard input), or of a hex string (spaces, colons, 0x and
    newlines allowed)."""
    if source == "-":
        data = sys.stdin.buffer.read()
        if not data:
            raise FarsideError("standard input is empty")
        return data
    path = Path(source)
    try:
        is_file = path.exists()
    except OSError:  # e.g. a long hex string is "file name too long"
        is_file = False
    if is_file:
        if path.is_dir():
            raise FarsideError(f"{source} is a directory, expected a capture file or hex")
        data = path.read_bytes()
        if not data:
            raise FarsideError(f"{source} is empty")
        return data
    text = source.strip()
    if text.lower().startswith("0x"):
        text = text[2:]
    clean = "".join(ch for ch in text if ch not in " :\n\t_-")
    for i, ch in enumerate(clean):
        if ch not in string.hexdigits:
            raise FarsideError(
                f"{source[:40]!r} is neither a file nor hex: {ch!r} at hex digit {i} is not a hex digit"
            )
    if not clean:
        raise FarsideError("empty input: expected hex or a capture file")
    if len(clean) % 2:
        raise FarsideError(f"hex input has an odd number of digits ({len(clean)}): one is missing")
    return bytes.fromhex(clean)


# --- layers ------------------------------------------------------------------------------------

def _named(dictionary: Dictionary, decoded: Decoded) -> Layer:
    layer: Layer = {"layer": decoded.kind, "name": decoded.name}
    if decoded.id is not None:
        layer["id"] = decoded.id
    if decoded.severity:
        layer["severity"] = decoded.severity
    if decoded.message:
        layer["message"] = decoded.message
    if decoded.values:
        layer["values"] = [asdict(v) for v in decoded.values]
    if decoded.kind == "unknown":
        layer["data"] = decoded.raw.hex()
    return layer


def tc_packet_layers(raw: bytes, dictionary: Dictionary, offset: int = 0) -> list[Layer]:
    header = parse_primary_header(raw)
    layers: list[Layer] = [{
        "layer": "space_packet", "offset": offset, "type": "TC", "apid": header.apid,
        "seq_count": header.seq_count, "sequence_flags": header.sequence_flags, "length": header.packet_length,
    }]
    try:
        p = parse_tc_packet(raw)
    except ProtocolError as exc:
        raise ProtocolError(f"{exc} (packet at octet {offset})") from None
    layers.append({
        "layer": "pus_tc", "service": p.service, "subservice": p.subservice, "ack": p.ack,
        "source_id": p.source_id, "crc": f"{p.crc:04x}",
    })
    try:
        layers.append(_named(dictionary, dictionary.decode_command(p.service, p.subservice, p.app_data)))
    except DictionaryError as exc:
        layers.append({"layer": "unknown", "name": f"TC_{p.service}_{p.subservice}",
                       "data": p.app_data.hex(), "note": str(exc)})
    return layers


def tm_packet_layers(raw: bytes, dictionary: Dictionary, offset: int = 0) -> list[Layer]:
    header = parse_primary_header(raw)
    layers: list[Layer] = [{
        "layer": "space_packet", "offset": offset, "type": "TM", "apid": header.apid,
        "seq_count": header.seq_count, "sequence_flags": header.sequence_flags, "length": header.packet_length,
    }]
    if header.apid == IDLE_APID:
        layers[0]["idle"] = True
        return layers
    try:
        p = parse_tm_packet(raw)
    except ProtocolError as exc:
        raise ProtocolError(f"{exc} (packet at octet {offset})") from None
    t = Cuc.from_bytes(p.time)
    layers.append({
        "layer": "pus_tm", "service": p.service, "subservice": p.subservice, "msg_counter": p.msg_counter,
        "dest_id": p.dest_id, "time_s": t.to_seconds(),
        "time_utc": t.to_datetime().isoformat().replace("+00:00", "Z"), "crc": f"{p.crc:04x}",
    })
    try:
        layers.append(_named(dictionary, dictionary.decode_tm(p.service, p.subservice, p.data)))
    except DictionaryError as exc:
        layers.append({"layer": "unknown", "name": f"TM_{p.service}_{p.subservice}",
                       "data": p.data.hex(), "note": str(exc)})
    return layers


def _looks_secured(frame: TcFrame) -> int:
    """Without keys: the security header length (6: legacy SPI + sequence number, 14: SPI +
    IV) under which the data field, once split, carries a TC packet or a control command in
    the clear (the mission secures every TC frame); 0 if neither does (plain, or encrypted)."""
    for header in (SECURITY_HEADER_LENGTH, GCM_SECURITY_HEADER_LENGTH):
        if len(frame.data) < header + MAC_LENGTH:
            continue
        inner = frame.data[header:-MAC_LENGTH]
        if frame.control:
            try:
                parse_control_command(inner)
                return header
            except ProtocolError:
                continue
        try:
            if len(inner) >= 6:
                parse_tc_packet(inner[: parse_primary_header(inner).packet_length])
                if len(inner) >= TC_OVERHEAD:
                    return header
        except ProtocolError:
            continue
    return 0


def tc_frame_layers(raw: bytes, dictionary: Dictionary, offset: int,
                    auth: FrameAuthenticator | None) -> list[Layer]:
    try:
        plain = parse_tc_frame(raw)
    except ProtocolError as exc:
        raise ProtocolError(f"{exc} (TC frame at octet {offset})") from None
    layers: list[Layer] = [{
        "layer": "tc_frame", "offset": offset, "type": plain.frame_type.value, "scid": plain.scid,
        "vcid": plain.vcid, "frame_seq": plain.frame_seq, "length": plain.length,
        "fecf": raw[-2:].hex(),
    }]
    frame = plain
    guessed = _looks_secured(plain) if auth is None else 0
    if auth is not None or guessed:
        header = guessed or SECURITY_HEADER_LENGTH
        if auth is not None and len(plain.data) >= 2:
            header = auth.split(int.from_bytes(plain.data[:2], "big")) or SECURITY_HEADER_LENGTH
        frame = parse_tc_frame(raw, security=header) if len(plain.data) >= header + MAC_LENGTH else plain
        sec: Layer = {"layer": "security", "spi": frame.spi, "seq": frame.sec_seq,
                      "mac": frame.mac.hex() if frame.mac else None}
        if frame.iv is not None:
            sec["iv"] = frame.iv.hex()
        if auth is not None:
            try:
                spi = frame.spi
                if spi is None:
                    raise AuthError(AuthReason.NO_SECURITY_HEADER, "frame too short for the security header")
                clear = auth.check(frame)
                if clear is not None:
                    frame = replace(frame, data=clear)
                auth.commit(spi, frame.sec_seq or 0)
                sec["auth"] = "OK"
            except AuthError as exc:
                sec["auth"] = AuthReason(exc.reason).name
                sec["auth_detail"] = str(exc)
        else:
            sec["auth"] = "not checked (no --keys)"
        layers.append(sec)
    data = frame.data
    if frame.frame_type is FrameType.BC:
        try:
            command, value = parse_control_command(data)
            layers.append({"layer": "control_command", "name": command, **({"vr": value} if value is not None else {})})
        except ProtocolError as exc:
            layers.append({"layer": "control_command", "name": "INVALID", "note": str(exc)})
        return layers
    pos = 0
    base = offset + (len(raw) - len(data) - 2 - (16 if frame.mac else 0))
    while pos < len(data):
        if len(data) - pos < 6:
            raise ProtocolError(f"{len(data) - pos} stray octets after the packets (octet {base + pos})")
        length = parse_primary_header(data, pos).packet_length
        if pos + length > len(data):
            raise ProtocolError(
                f"space packet at octet {base + pos} says {length} octets, only {len(data) - pos} left in the frame"
            )
        layers += tc_packet_layers(data[pos:pos + length], dictionary, base + pos)
        pos += length
    return layers


def tm_frame_layer(frame: TmFrame, offset: int) -> Layer:
    layer: Layer = {
        "layer": "tm_frame", "offset": offset, "scid": frame.scid, "vcid": frame.vcid,
        "mc_count": frame.mc_count, "vc_count": frame.vc_count,
        "first_header_pointer": frame.first_header_pointer,
    }
    if frame.first_header_pointer == FHP_IDLE:
        layer["idle"] = True
    elif frame.first_header_pointer == FHP_NO_PACKET_START:
        layer["no_packet_start"] = True
    if frame.ocf is not None:
        c = decode_clcw(frame.ocf)
        layer["clcw"] = {"value": f"{frame.ocf:08x}", "vcid": c.vcid, "report_value": c.report_value,
                         "lockout": c.lockout, "wait": c.wait, "retransmit": c.retransmit,
                         "farm_b_counter": c.farm_b_counter}
    return layer


# --- whole inputs ------------------------------------------------------------------------------

def decode_tm_frames(frames: list[tuple[int, bytes]], dictionary: Dictionary,
                     frame_length: int) -> tuple[list[Item], dict[str, int]]:
    demux = TmDemultiplexer(frame_length=frame_length)
    items: list[Item] = []
    for offset, raw in frames:
        tm = parse_tm_frame(raw, frame_length)
        items.append({"layers": [tm_frame_layer(tm, offset)]})
        for packet in demux.feed_parsed(tm):
            try:
                items.append({"layers": tm_packet_layers(packet, dictionary)})
            except ProtocolError as exc:
                items.append({"layers": [{"layer": "error", "message": str(exc), "data": packet.hex()}]})
    return items, asdict(demux.counters)


def decode_bytes(data: bytes, dictionary: Dictionary, direction: str = "auto",
                 auth: FrameAuthenticator | None = None) -> dict[str, Any]:
    """Every layer of `data`: {"input": kind, "items": [{"layers": [...]}, ...], "counters": {...}}."""
    tm_length = int(dictionary.mission.get("tm_frame_length", 256))
    if direction in ("auto", "tm") and ASM in data[:4 + tm_length + 8]:
        d = TmDeframer(tm_length)
        d.track_offsets = True
        frames = d.feed(data)
        if frames:
            items, demux = decode_tm_frames([(off + 4, f) for off, f in zip(d.offsets, frames, strict=True)], dictionary, tm_length)
            return {"input": "tm_stream", "items": items,
                    "counters": asdict(d.counters) | {"pending": d.pending, "demux": demux},
                    "drops": d.drops}
        if direction == "tm" or data[:2] != TC_START:
            raise ProtocolError(_no_frame("TM", d, len(data)))
    if direction in ("auto", "tc") and data[:2] == TC_START:
        tcd = TcDeframer(int(dictionary.mission.get("tc_frame_max", 1024)))
        tcd.track_offsets = True
        frames = tcd.feed(data)
        if not frames:
            cltus = CltuDeframer()
            cltu_frames = cltus.feed(data)
            if cltu_frames:
                items = [_tc_item(f, dictionary, 0, auth) for f in cltu_frames]
                return {"input": "cltu_stream", "items": items, "cltu_counters": asdict(cltus.counters)}
            raise ProtocolError(_no_frame("TC", tcd, len(data)))
        items = [_tc_item(f, dictionary, off + 2, auth) for off, f in zip(tcd.offsets, frames, strict=True)]
        return {"input": "tc_stream", "items": items,
                "counters": asdict(tcd.counters) | {"pending": tcd.pending}, "drops": tcd.drops}
    return {"input": "single", "items": [{"layers": _single(data, dictionary, direction, auth)}]}


def _tc_item(frame: bytes, dictionary: Dictionary, offset: int, auth: FrameAuthenticator | None) -> Item:
    """One TC frame of a stream; a frame whose content does not parse becomes an error layer."""
    try:
        return {"layers": tc_frame_layers(frame, dictionary, offset, auth)}
    except ProtocolError as exc:
        return {"layers": [{"layer": "error", "offset": offset, "message": str(exc), "data": frame.hex()}]}


def _no_frame(kind: str, d: TmDeframer | TcDeframer, n: int) -> str:
    c = d.counters
    where = f"; first bad frame at octet {d.drops[0][0]} ({d.drops[0][1].replace('_', ' ')[:-1]})" if d.drops else ""
    return (f"no valid {kind} frame in {n} octets: {c.garbage_octets} octets of garbage, "
            f"{c.frames_bad} bad frames, {d.pending} octets of an unfinished frame{where}")


def _single(data: bytes, dictionary: Dictionary, direction: str, auth: FrameAuthenticator | None) -> list[Layer]:
    """A single TC/TM frame or a bare space packet, recognised by its own length field."""
    tm_length = int(dictionary.mission.get("tm_frame_length", 256))
    fits: list[str] = []
    why: list[str] = []
    if len(data) < 6:
        raise ProtocolError(f"{len(data)} octets are too short for a space packet (6) or a frame (7)")
    header = parse_primary_header(data)
    ptype = "tc" if header.packet_type == TYPE_TC else "tm"
    if header.packet_length == len(data) and direction in ("auto", ptype):
        fits.append(f"{ptype}_packet")
    else:
        why.append(f"not a space packet (length field, octets 4-5, says {header.packet_length} octets)")
    tc_len = frame_length_from_header(data)
    if tc_len == len(data) and direction in ("auto", "tc"):
        fits.append("tc_frame")
    else:
        why.append(f"not a TC frame (length field, octets 2-3, says {tc_len} octets)")
    if len(data) == tm_length and direction in ("auto", "tm"):
        fits.append("tm_frame")
    else:
        why.append(f"not a TM frame ({tm_length} octets)")
    if not fits:
        raise ProtocolError(f"{len(data)} octets fit no layout: " + "; ".join(why))
    first_error: ProtocolError | None = None
    for kind in fits:
        try:
            if kind == "tc_frame":
                return tc_frame_layers(data, dictionary, 0, auth)
            if kind == "tm_frame":
                items, _ = decode_tm_frames([(0, data)], dictionary, tm_length)
                return [layer for item in items for layer in item["layers"]]
            if kind == "tc_packet":
                return tc_packet_layers(data, dictionary)
            return tm_packet_layers(data, dictionary)
        except ProtocolError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


# --- text output ----------------------------------------------------------------------------

def _fmt_values(values: list[dict[str, Any]], indent: str) -> list[str]:
    out = []
    for v in values:
        value = v["value"]
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        extra = f"  (raw {v['raw']})" if v["raw"] != v["value"] and not isinstance(v["value"], float) or (
            isinstance(v["value"], float) and v["raw"] != v["value"]) else ""
        out.append(f"{indent}{v['name']} = {shown}{(' ' + v['unit']) if v.get('unit') else ''}{extra}")
    return out


FRAME_TYPES = {"AD": "sequence-controlled", "BD": "expedited", "BC": "control"}
ACK_FLAGS = ((1, "acceptance"), (2, "start"), (4, "progress"), (8, "completion"))  # PUS-C TC ack bits


def _n(count: int, noun: str) -> str:
    """"1 frame", "2 frames"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _ack(flags: int) -> str:
    """The TC acknowledgement flags and the verification reports they ask for."""
    if flags == 0xF:
        wanted = "all"
    else:
        wanted = "+".join(name for bit, name in ACK_FLAGS if flags & bit) or "no"
    return f"ack {flags:#x} ({wanted} reports)"


def _utc_ms(iso: str) -> str:
    """An ISO UTC time to the millisecond, always with the fraction: 2019-01-03T02:42:40.500Z."""
    when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _first_header(layer: Layer) -> str:
    if layer.get("idle"):
        return "idle frame (no packets)"
    if layer.get("no_packet_start"):
        return "no packet starts here (continues one)"
    return f"first packet at data octet {layer['first_header_pointer']}"


def render_layer(layer: Layer) -> list[str]:
    kind = layer["layer"]
    if kind == "tm_frame":
        lines = [f"TM frame at octet {layer['offset']}: SCID {layer['scid']} VC {layer['vcid']} "
                 f"frame #{layer['vc_count']} (MC #{layer['mc_count']}), {_first_header(layer)}"]
        if "clcw" in layer:
            c = layer["clcw"]
            flags = ", ".join(f for f in ("lockout", "wait", "retransmit") if c[f]) or "none"
            lines.append(f"  CLCW {c['value']}: VC {c['vcid']} N(R) {c['report_value']} "
                         f"(next TC frame expected), flags: {flags}")
        return lines
    if kind == "tc_frame":
        gloss = FRAME_TYPES.get(layer["type"], "")
        return [f"TC frame at octet {layer['offset']}: type {layer['type']}{f' ({gloss})' if gloss else ''} "
                f"SCID {layer['scid']} VC {layer['vcid']} N(S) {layer['frame_seq']}, {_n(layer['length'], 'octet')}, "
                f"FECF {layer['fecf']} ok"]
    if kind == "security":
        detail = f" ({layer['auth_detail']})" if "auth_detail" in layer else ""
        return [f"  security: SPI {layer['spi']} seq {layer['seq']} MAC {layer['mac']} auth {layer['auth']}{detail}"]
    if kind == "control_command":
        vr = f" V(R)={layer['vr']}" if "vr" in layer else ""
        return [f"  control command {layer['name']}{vr}"]
    if kind == "space_packet":
        idle = " (idle)" if layer.get("idle") else ""
        return [f"  space packet: {layer['type']} APID {layer['apid']} seq {layer['seq_count']}, "
                f"{_n(layer['length'], 'octet')}{idle}"]
    if kind == "pus_tc":
        return [f"  PUS TC {layer['service']}/{layer['subservice']} {_ack(layer['ack'])} "
                f"source {layer['source_id']} CRC {layer['crc']} ok"]
    if kind == "pus_tm":
        return [f"  PUS TM {layer['service']}/{layer['subservice']} counter {layer['msg_counter']} "
                f"time {_utc_ms(layer['time_utc'])} (mission epoch + {layer['time_s']:.3f} s) CRC {layer['crc']} ok"]
    if kind == "error":
        return [f"  error: {layer['message']}"]
    if kind == "unknown":
        note = f" ({layer['note']})" if "note" in layer else ""
        return [f"  {layer['name']}: data {layer['data'] or '-'}{note}"]
    head = f"  {kind} {layer['name']}"
    if "id" in layer:
        head += f" ({'sid' if kind == 'hk' else 'id'} {layer['id']})"
    if "severity" in layer:
        head += f" [{layer['severity']}]"
    if "message" in layer and kind != "parameter":  # a parameter's message repeats its one value
        head += f": {layer['message']}"
    return [head] + _fmt_values(layer.get("values", []), "    ")


INPUTS = {"tm_stream": "TM stream", "tc_stream": "TC stream", "cltu_stream": "CLTU stream"}


DROP_REASONS = {"bad_crc_frames": "bad CRC", "bad_length_frames": "bad length", "bad_header_frames": "bad header"}


def _bad_frames(c: dict[str, int]) -> str:
    bad = [(c[key], label) for key, label in DROP_REASONS.items()]
    total = sum(n for n, _ in bad)
    detail = ", ".join(f"{n} {label}" for n, label in bad if n)
    return f"{total} bad ({detail})" if total else "0 bad"


def render_text(result: dict[str, Any]) -> str:
    lines = []
    for item in result["items"]:
        for layer in item["layers"]:
            lines += render_layer(layer)
    name = INPUTS.get(result["input"], result["input"])
    if "cltu_counters" in result:
        c = result["cltu_counters"]
        lines.append(f"{name}: {_n(c['cltus'], 'CLTU')}, {_n(c['blocks'], 'code block')} "
                     f"({c['corrected_blocks']} corrected), {_n(c['frames_ok'], 'frame')} ok, "
                     f"{c['bad_crc_frames']} bad CRC, {_n(c['garbage_octets'], 'octet')} of garbage")
    if "counters" in result:
        c = result["counters"]
        demux = c.get("demux")
        idle = f" ({demux['idle_frames']} idle)" if demux and demux.get("idle_frames") else ""
        summary = (f"{name}: {_n(c['frames_ok'], 'frame')} ok{idle}, {_bad_frames(c)}, "
                   f"{_n(c['garbage_octets'], 'octet')} of garbage")
        if c["pending"]:
            summary += f", {_n(c['pending'], 'octet')} of an unfinished frame at the end"
        if demux:
            summary += (f"; {_n(demux['packets'], 'packet')}, {_n(demux['gaps'], 'gap')} "
                        f"({_n(demux['frames_lost'], 'frame')} lost), {_n(demux['packets_dropped'], 'packet')} dropped")
            if demux.get("frames_duplicate"):
                summary += f", {_n(demux['frames_duplicate'], 'duplicate frame')} discarded"
        lines.append(summary)
        for off, why in result.get("drops", [])[:20]:
            lines.append(f"  dropped at octet {off}: {DROP_REASONS.get(why, why)} frame")
    return "\n".join(lines)


@click.command("decode")
@click.argument("source", metavar="HEX|FILE")
@click.option("--direction", type=click.Choice(["auto", "tm", "tc"]), default="auto", show_default=True,
              help="what the input is: telemetry, telecommand, or guess")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of text")
@click.option("--keys", "keys_path", type=click.Path(dir_okay=False), default=None,
              help="key file (the SDLS key file form) to verify and decrypt TC frames")
@click.option("--dictionary", "dictionary_path", type=click.Path(dir_okay=False), default=None,
              help="dictionary file (default: the packaged protocols/dictionary.json)")
def cli(source: str, direction: str, as_json: bool, keys_path: str | None, dictionary_path: str | None) -> None:
    """Print every layer of a capture file or a hex string: frames, security, packets, PUS
    headers, and the command or telemetry named from the dictionary."""
    dictionary = load_dictionary(dictionary_path)
    auth = FrameAuthenticator(KeyStore.load(keys_path)) if keys_path else None
    data = read_input(source)
    result = decode_bytes(data, dictionary, direction, auth)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(render_text(result))
