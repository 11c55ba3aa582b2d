"""The relay's UDP ground endpoint: frames as datagrams, as Yamcs's frame links speak them."""

from __future__ import annotations

import asyncio
import socket

import pytest

from hil.errors import FarsideError
from hil.relay.channel import ASM, TC_START, Relay
from hil.relay.endpoints import MemoryEndpoint, UdpFrameEndpoint, open_endpoint
from hil.relay.profile import load_profile
from hil.relay.runner import RelayRunner
from protocols.tc_frame import build_bd_frame

FRAME = 256


def _tm_frame(n: int) -> bytes:
    return bytes([n]) * FRAME


async def _exchange() -> tuple[list[bytes], bytes, UdpFrameEndpoint]:
    tm_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tm_sock.bind(("127.0.0.1", 0))
    tm_sock.setblocking(False)
    ground = UdpFrameEndpoint("127.0.0.1", tm_sock.getsockname()[1], 0, FRAME)
    rover = MemoryEndpoint("rover")
    got_rover = bytearray()
    rover.peer_on_data = got_rover.extend
    runner = RelayRunner(Relay(load_profile("lab")), ground, rover)
    await runner.start()
    loop = asyncio.get_running_loop()
    try:
        # two frames with octets between them, the second split across writes
        stream = ASM + _tm_frame(1) + b"\x00junk" + ASM + _tm_frame(2)
        rover.peer_write(stream[:100])
        rover.peer_write(stream[100:300])
        rover.peer_write(stream[300:])
        frames: list[bytes] = []
        for _ in range(200):
            try:
                frames.append(await loop.sock_recv(tm_sock, 4096))
            except BlockingIOError:
                pass
            if len(frames) == 2:
                break
            await asyncio.sleep(0.01)
        tc = build_bd_frame(171, 1, b"\x18\x01\xc0\x16\x00\x06\x2f\x11\x01\x00\x00\xab\x62")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(tc, ("127.0.0.1", ground.tc_port))
        for _ in range(200):
            if len(got_rover) >= len(tc) + 2:
                break
            await asyncio.sleep(0.01)
        return frames, bytes(got_rover), ground
    finally:
        await runner.stop()
        tm_sock.close()


def test_udp_endpoint_sends_each_tm_frame_without_asm_and_passes_tc_datagrams_with_eb90() -> None:
    frames, to_rover, ground = asyncio.run(_exchange())
    assert frames == [_tm_frame(1), _tm_frame(2)]
    assert ground.dropped_octets == len(b"\x00junk")
    tc = build_bd_frame(171, 1, b"\x18\x01\xc0\x16\x00\x06\x2f\x11\x01\x00\x00\xab\x62")
    assert to_rover == TC_START + tc
    assert ground.frames_in == 1 and ground.frames_out == 2


def test_udp_endpoint_specs_and_a_busy_port_are_one_line_errors() -> None:
    ep = open_endpoint("udp:10017:10018", tm_frame_length=512)
    assert isinstance(ep, UdpFrameEndpoint)
    assert (ep.host, ep.tm_port, ep.tc_port, ep.tm_frame_length) == ("127.0.0.1", 10017, 10018, 512)
    assert open_endpoint("udp:0.0.0.0:1:2").host == "0.0.0.0"
    for bad in ("udp:1", "udp:x:2", "udp:1:99999", "udp:h:1:2:3"):
        with pytest.raises(FarsideError, match="expected udp:TM_PORT:TC_PORT"):
            open_endpoint(bad)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]

        async def _open() -> None:
            await UdpFrameEndpoint("127.0.0.1", 1, port, FRAME).open()

        with pytest.raises(FarsideError, match=f"cannot listen on UDP 127.0.0.1:{port}") as err:
            asyncio.run(_open())
        assert "\n" not in str(err.value)
