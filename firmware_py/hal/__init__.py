# Hardware abstraction: one object per board that the rover's components use.
#
# Two implementations share this interface: `firmware_py.hal.sim.SimHal` (a plant
# model; CPython, the unix port, or a Pico with no motors wired) and
# `firmware_py.hal.rp2.Rp2Hal` (the real `machine` API). Attributes are refreshed
# by `update(now_ms)`, called once per control-loop iteration:
#
#   enc[i]            encoder counts, wheel i (0-2 left front..rear, 3-5 right)
#   current_ma[i]     motor current, mA
#   pitch_cdeg, roll_cdeg (0.01 deg), yaw_urad_s (urad/s)   IMU, integers
#   obstacle_mm, obstacle_dist_mm       hazard sensor (0 when none / no sensor)
#   battery_pct, battery_mv, solar_dw, temp_motor_cc, temp_board_cc
#
# All integers, so the control loop allocates nothing.
# Methods: set_motor(i, duty Q15 -32767..32767, 0 coasts), motors_enable(on) (ONLY safety
# calls it), wdt_start(timeout_ms), wdt_feed(), reset_cause(), reset() (never
# returns: raises Reset in the sim), inject(fault, wheel, value) -> bool,
# hibernate(on), mem_free(), tasks() -> coroutines emulating hardware.
# `link` is the byte stream: read_into(buf) -> n (non-blocking, 0 when idle) and
# write(buf) -> n.
from firmware_py.compat import const

RESET_POWER_ON = const(0)
RESET_WATCHDOG = const(1)
RESET_COMMANDED = const(2)
RESET_SOFT = const(3)
RESET_BROWN_OUT = const(4)


class Reset(Exception):
    # Raised out of Rover.run() when the (simulated) board resets; `cause` is
    # what the hardware will report at the next boot.
    def __init__(self, cause):
        super().__init__(cause)
        self.cause = cause


class EnterRepl(Exception):
    # Raised out of Rover.run() by the ENTER_REPL command.
    pass


class Pipe:
    # An in-memory byte stream with the link API (one direction).
    def __init__(self, size=8192):
        self.buf = bytearray(size)
        self.head = 0
        self.tail = 0
        self.size = size

    def __len__(self):
        return (self.head - self.tail) % self.size

    def write(self, data):
        n = 0
        for b in data:
            nxt = (self.head + 1) % self.size
            if nxt == self.tail:
                break  # full: drop like a UART FIFO
            self.buf[self.head] = b
            self.head = nxt
            n += 1
        return n

    def read_into(self, out):
        n = 0
        lim = len(out)
        while n < lim and self.tail != self.head:
            out[n] = self.buf[self.tail]
            self.tail = (self.tail + 1) % self.size
            n += 1
        return n

    def read(self, n=-1):
        out = bytearray(len(self) if n < 0 else min(n, len(self)))
        self.read_into(out)
        return bytes(out)


class DuplexLink:
    # The rover's end of a pair of pipes: reads `rx`, writes `tx`.
    def __init__(self, rx, tx):
        self.rx = rx
        self.tx = tx

    def read_into(self, buf):
        return self.rx.read_into(buf)

    def write(self, data):
        return self.tx.write(data)


def link_pair(size=65536):
    # (rover_link, ground_link): bytes written on one are read on the other.
    up = Pipe(size)
    down = Pipe(size)
    return DuplexLink(up, down), DuplexLink(down, up)
