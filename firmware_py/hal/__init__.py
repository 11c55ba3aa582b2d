# Hardware abstraction: one object per board that the rover's components use.
#
# Two implementations share this interface: `firmware_py.hal.sim.SimHal` (a plant
# model; CPython, the unix port, or a Pico with no motors wired) and
# `firmware_py.hal.rp2.Rp2Hal` (the real `machine` API). Attributes are refreshed
# by `update(now_ms)`, called once per control-loop iteration:
#
#   enc[i]            encoder counts, wheel i (0-2 left front..rear, 3-5 right)
#   current_ma[i]     motor current, mA
#   pitch_cdeg, roll_cdeg (0.01 deg; pitch + nose up, roll + left side up),
#   yaw_urad_s (urad/s, + counter-clockwise)   IMU, integers, with sensor noise;
#                     the gyro has a small bias (estimate it standing still)
#   obstacle_mm, obstacle_dist_mm       tallest rock the hazard camera sees and its
#                     distance ahead of the front axle (0 when none / no sensor)
#   haz_n, haz_h_mm[4], haz_d_mm[4], haz_lat_mm[4], haz_w_mm[4]   hazard camera
#                     (sim board; 0 on rp2): up to 4 rocks seen this update, nearest
#                     first: height above the local ground, distance ahead of the
#                     front axle, lateral offset of the rock's centre from the centre
#                     line (+ left), width. The camera sees 0.3..3.0 m ahead across
#                     the swept width (track + one wheel width) plus 0.3 m each side,
#                     rocks of 5 cm and taller.
#   vo_seq, vo_x_mm, vo_y_mm, vo_h_cdeg   visual-odometry pose fix (sim board; 0 on
#                     rp2): vo_seq increments at each new fix; the pose in the world
#                     frame (heading -18000..17999, counter-clockwise from east). A fix
#                     every 1.0 m of travel and 0.5 s after the rover comes to rest;
#                     its error is a random walk independent of wheel slip.
#   battery_pct, battery_mv, solar_dw (array input, 0.1 W), sun_elev_cdeg (the
#                     Sun's elevation, negative at night; 0 on rp2), temp_motor_cc,
#                     temp_board_cc
#
# All integers (lists preallocated), so the control loop allocates nothing.
# Methods: set_motor(i, duty Q15 -32767..32767, 0 coasts), motors_enable(on) (ONLY safety
# calls it), wdt_start(timeout_ms), wdt_feed(), reset_cause(), reset() (never
# returns: raises Reset in the sim), inject(fault, wheel, value) -> bool,
# hibernate(on) (the board's load drops to the hibernation load), heater(on)
# (survival heaters armed: a thermostat holds the electronics at their survival
# temperature; a no-op on boards without them), mem_free(), tasks() -> coroutines
# emulating hardware. The sim HAL also has `async power_good()`: the power supply
# awaits it before each boot, so a board browned out by an empty battery stays off
# until the array has recharged it (then it boots with reset cause BROWN_OUT).
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
