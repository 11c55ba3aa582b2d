"""The Queqiao relay emulator: delay, rate, errors, outages and store-and-forward between
a ground-side and a rover-side endpoint. The model (channel.py) is sans-I/O; runner.py
drives it with real or in-memory endpoints on the real or the virtual clock."""

from hil.relay.capture import CaptureRecord, CaptureWriter, Direction, read_capture
from hil.relay.channel import Relay
from hil.relay.profile import RelayProfile, load_profile

__all__ = [
    "CaptureRecord",
    "CaptureWriter",
    "Direction",
    "Relay",
    "RelayProfile",
    "load_profile",
    "read_capture",
]
