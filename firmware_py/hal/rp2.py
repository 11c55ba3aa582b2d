# rp2 HAL: the rover's hardware on a Raspberry Pi Pico / Pico W / Pico 2 through the
# real `machine` API (type-checked against micropython-rp2-rpi-pico-stubs).
#
# Wiring (boards/pico.json): six PWM outputs (duty_u16, 20 kHz) into three
# TB6612FNG drivers; the wheels of a side share direction pins (IN1/IN2, or IN1
# alone with IN2 through an inverter: boards/pico_uart.json), the
# drivers' STBY lines are one enable pin that only safety drives
# (motors_enable). The link: the REPL's USB CDC (stdio), or a UART of its own
# (link kind "uart": UartLink, buffered so that reads never wait and a write
# queues a whole frame). Six quadrature encoders on pin IRQs (both edges of A and B,
# a 16-entry transition table; one handler reads every encoder pin at once from SIO
# GPIO_IN and only updates counters, in native code where the port has viper). I2C: an
# MPU-6050 (pitch and roll from the accelerometer, yaw rate from the gyro) and
# an INA219 per motor (shunt voltage -> current; bus voltage -> battery).
# machine.WDT (cannot be stopped; RP2040 max 8388 ms, RP2350 16777 ms).
# machine.reset_cause(): rp2 reports WDT_RESET after machine.reset() too, so the
# app keeps an intent flag file to tell COMMANDED from WATCHDOG.
import math
from array import array

import machine
from machine import I2C, PWM, WDT, Pin

from firmware_py.compat import const
from firmware_py.hal import RESET_POWER_ON, RESET_SOFT, RESET_WATCHDOG

_MPU_PWR = 0x6B
_MPU_ACCEL = 0x3B
_MPU_TEMP = 0x41
_MPU_GYRO_Z = 0x47
_INA_SHUNT = 0x01
_INA_BUS = 0x02
_QUAD = (0, -1, 1, 0, 1, 0, 0, -1, -1, 0, 0, 1, 0, 1, -1, 0)
_HYPOT_MAX = const(23170)  # below this, two squares sum to a small int (under 2^30)
_MPU_TEMP_OFS = const(1242020)  # 36.53 C x 100 x 340 LSB/C
# atan(k / 64) for k = 0..64 in thousandths of a degree (built once, at import)
_ATAN_MDEG = array("H", [int(math.degrees(math.atan(k / 64)) * 1000 + 0.5) for k in range(65)])
_BATT_EMPTY_MV = 10800
_BATT_FULL_MV = 12600
_F_CLEAR = const(0)
_F_HANG = const(9)
_UART_TXBUF = const(1024)  # four 256-octet TM frames with their ASMs
_UART_RX_MS = const(250)  # the UART's rxbuf holds this long of octets at the line rate


_GPIO_IN = const(0xD0000004)  # SIO GPIO_IN: every pin's level in one word (RP2040, RP2350)
# _Encoders.e, one int32 array: the six counts, then each encoder's last state, its A pin,
# its B pin, then the transition table with 1 added (0, 1, 2 for -1, 0, 1)
_E_STATE = const(6)
_E_PIN_A = const(12)
_E_PIN_B = const(18)
_E_QUAD = const(24)

# The edge handler in native code: every encoder's pins in one load, each decoder stepped
# through the table; on a 125 MHz RP2040 about 10 us for all six, where a bytecode handler
# per encoder took about 30 us for its one. Compiled at import on the board (mpy-cross for
# a host port has no native emitter); `_Encoders.edge`, the same loop as bytecode, where
# that fails. (The offsets are _E_STATE, _E_PIN_A, _E_PIN_B and _E_QUAD.)
_VIPER = """
@micropython.viper
def edge(_pin):
    g = int(ptr32(0xD0000004)[0])
    e = ptr32(E)
    i = 0
    while i < 6:
        s = (((g >> e[12 + i]) & 1) << 1) | ((g >> e[18 + i]) & 1)
        e[i] += e[24 + ((e[6 + i] << 2) | s)] - 1
        e[6 + i] = s
        i += 1
"""


class _Encoders:
    # Six quadrature decoders, one per (A, B) pin pair, counted in a hard IRQ on both edges
    # of every pin, without allocation: e[i] is encoder i's count.
    def __init__(self, pins):
        e = self.e = array("i", [0] * (_E_QUAD + 16))
        for i in range(6):
            e[_E_PIN_A + i] = pins[i][0]
            e[_E_PIN_B + i] = pins[i][1]
        for i in range(16):
            e[_E_QUAD + i] = _QUAD[i] + 1
        self.pins = []
        for a, b in pins:
            self.pins.append(Pin(a, Pin.IN, Pin.PULL_UP))
            self.pins.append(Pin(b, Pin.IN, Pin.PULL_UP))
        self.edge(None)  # each encoder's state as its pins are now; the counts start at 0
        for i in range(6):
            e[i] = 0
        handler = self._native()
        self.native = handler is not None  # False: the bytecode handler counts
        self.handler = handler or self.edge
        trig = Pin.IRQ_RISING | Pin.IRQ_FALLING
        for p in self.pins:
            p.irq(self.handler, trig, hard=True)

    def _native(self):
        try:
            import micropython

            g = {"micropython": micropython, "E": self.e}
            exec(_VIPER, g)
            return g["edge"]
        except Exception:  # no native emitter on this build: the bytecode handler
            return None

    def edge(self, _pin):
        g = machine.mem32[_GPIO_IN]
        e = self.e
        for i in range(6):
            s = (((g >> e[_E_PIN_A + i]) & 1) << 1) | ((g >> e[_E_PIN_B + i]) & 1)
            e[i] += e[_E_QUAD + ((e[_E_STATE + i] << 2) | s)] - 1
            e[_E_STATE + i] = s


class UartLink:
    # The link API on a machine.UART. read_into never waits: it takes only what
    # any() says is there. write returns with the whole frame queued: the txbuf
    # takes frames whole; should it be full, the rest follows as it drains (a
    # frame cut in two on the line would cost the ground both halves).
    def __init__(self, uart):
        self.uart = uart

    def read_into(self, buf):
        n = self.uart.any()
        if not n:
            return 0
        got = self.uart.readinto(buf, min(n, len(buf)))
        return got or 0

    def write(self, data):
        total = len(data)
        n = self.uart.write(data) or 0
        if n < total:
            mv = memoryview(data)
            while n < total:
                n += self.uart.write(mv[n:]) or 0
        return n


def uart_link(lk):
    # The link kind "uart" of a board definition: {"uart": 0, "baud": 115200, "tx": 0, "rx": 1}.
    # rxbuf: a TC frame (1024 octets and its CLTU) arriving between two link polls
    # (100 ms while the uplink is quiet) must not overflow it.
    baud = lk["baud"]
    rxbuf = baud * _UART_RX_MS // 10000
    u = machine.UART(
        lk["uart"],
        baud,
        tx=Pin(lk["tx"]),
        rx=Pin(lk["rx"]),
        txbuf=_UART_TXBUF,
        rxbuf=rxbuf if rxbuf > 2048 else 2048,
        timeout=0,
    )
    return UartLink(u)


class Rp2Hal:
    name = "rp2"

    def __init__(self, board, link=None):
        self.board = board
        self.pwm = []
        for m in sorted(board["motors"], key=lambda m: m["wheel"]):
            p = PWM(Pin(m["pwm"]))
            p.freq(m["freq_hz"])
            p.duty_u16(0)
            self.pwm.append(p)
        md = board["motor_driver"]
        self.stby = Pin(md["standby_pin"], Pin.OUT, value=0)
        dp = board["direction_pins"]
        # (IN1, IN2) per side; IN2 None: wired to IN1 through an inverter
        self.dir_pins = (_dir_pins(dp["left"]), _dir_pins(dp["right"]))
        self.side_dir = [0, 0]
        self.encoders = _Encoders(board["encoders"]["pins"])
        ic = board["i2c"]
        self.i2c = I2C(ic["bus"], sda=Pin(ic["sda"]), scl=Pin(ic["scl"]), freq=ic["freq_hz"])
        self.imu_addr = ic["imu"]["addr"]
        # (address, shunt in micro-ohms) per motor
        self.ina = [(c["addr"], int(c["shunt_ohm"] * 1000000 + 0.5)) for c in ic["current"]]
        self._buf6 = bytearray(6)
        self._buf2 = bytearray(2)
        self.imu_ok = self._imu_init()
        self.wdt = None
        self.link = link
        if link is None:
            lk = board.get("link") or {}
            if lk.get("kind") == "uart":
                self.link = uart_link(lk)
            else:
                from firmware_py.hal.stdio import StdioLink

                self.link = StdioLink()
        self.enc = [0] * 6
        self.current_ma = [0] * 6
        self.duty = [0] * 6
        self.pitch_cdeg = 0
        self.roll_cdeg = 0
        self.yaw_urad_s = 0
        self.obstacle_mm = 0
        self.obstacle_dist_mm = 0
        # no battery sensor answering (a bench board): report full, never low
        self.battery_pct = 100
        self.battery_mv = 0
        self.solar_dw = 0
        self.temp_motor_cc = 0
        self.temp_board_cc = 0
        # sensors of the sim board only (hazard camera, visual odometry, Sun): none here
        self.sun_elev_cdeg = 0
        self.haz_n = 0
        self.haz_h_mm = [0] * 4
        self.haz_d_mm = [0] * 4
        self.haz_lat_mm = [0] * 4
        self.haz_w_mm = [0] * 4
        self.vo_seq = 0
        self.vo_x_mm = 0
        self.vo_y_mm = 0
        self.vo_h_cdeg = 0
        self.hibernating = False
        self.hang_task = 0

    def _imu_init(self):
        try:
            self.i2c.writeto_mem(self.imu_addr, _MPU_PWR, b"\x00")
            return True
        except OSError:
            return False

    # -- reset and watchdog --
    def reset_cause(self):
        c = machine.reset_cause()
        if c == machine.WDT_RESET:
            return RESET_WATCHDOG
        if c == machine.PWRON_RESET:
            return RESET_POWER_ON
        return RESET_SOFT

    def reset(self, cause=RESET_WATCHDOG):
        machine.reset()

    def wdt_start(self, timeout_ms):
        self.wdt = WDT(timeout=timeout_ms)

    def wdt_feed(self):
        if self.wdt is not None:
            self.wdt.feed()

    def tasks(self):
        return ()

    # -- actuators --
    def motors_enable(self, on):
        self.stby.value(1 if on else 0)

    def set_motor(self, i, duty):
        # duty: Q15 integer, -32767..32767 (no float on the control path)
        # Wheels on a side share their direction: the side turns the way its
        # first non-zero duty asks, and a wheel asking the other way coasts.
        side = 0 if i < 3 else 1
        self.duty[i] = duty
        want = 1 if duty > 0 else -1 if duty < 0 else 0
        cur = self.side_dir[side]
        if want and want != cur:
            others = 0
            for j in range(side * 3, side * 3 + 3):
                if j != i and self.duty[j] != 0:
                    others += 1
            if others == 0:
                pins = self.dir_pins[side]
                pins[0].value(1 if want > 0 else 0)
                if pins[1] is not None:
                    pins[1].value(0 if want > 0 else 1)
                self.side_dir[side] = want
                cur = want
        if want != cur:
            duty = 0
        d = (duty if duty > 0 else -duty) * 2
        self.pwm[i].duty_u16(d if d < 65535 else 65535)

    def hibernate(self, on):
        self.hibernating = bool(on)
        if on:
            self.motors_enable(False)

    def heater(self, on):
        # survival heaters: none wired on the Pico boards
        pass

    def inject(self, fault, wheel, value):
        # Physical faults live at the pins (a bench, or the emulated board's host);
        # the firmware takes only its own: HANG_TASK (9) and CLEAR (0) of it.
        if fault == _F_HANG:
            self.hang_task = wheel
            return True
        if fault == _F_CLEAR:
            self.hang_task = 0
            return True
        return False

    def mem_free(self):
        import gc

        return gc.mem_free()

    # -- sensors --
    def update(self, now_ms):
        e = self.encoders.e
        for i in range(6):
            self.enc[i] = e[i]
        if self.imu_ok:
            self._read_imu()
        self._read_currents()

    def _read_imu(self):
        # in small integers only: a float is a heap object on the rp2 port, and this runs
        # in every control period
        b = self._buf6
        try:
            self.i2c.readfrom_mem_into(self.imu_addr, _MPU_ACCEL, b)
            ax = _s16(b, 0)
            ay = _s16(b, 2)
            az = _s16(b, 4)
            if not (-_HYPOT_MAX < ay < _HYPOT_MAX and -_HYPOT_MAX < az < _HYPOT_MAX):
                ax >>= 1  # over 1.4 g: halved, so the squares' sum stays a small int
                ay >>= 1
                az >>= 1
            self.pitch_cdeg = _atan2_cdeg(-ax, _hypot(ay, az))
            self.roll_cdeg = _atan2_cdeg(ay, az)
            g = self._buf2
            self.i2c.readfrom_mem_into(self.imu_addr, _MPU_GYRO_Z, g)
            self.yaw_urad_s = _s16(g, 0) * 13323 // 100  # 131 LSB per deg/s
            self.i2c.readfrom_mem_into(self.imu_addr, _MPU_TEMP, g)
            # (raw / 340 + 36.53) C in hundredths, truncated towards zero
            n = _s16(g, 0) * 100 + _MPU_TEMP_OFS
            t = n // 340 if n >= 0 else -(-n // 340)
            self.temp_board_cc = t
            self.temp_motor_cc = t
        except OSError:
            pass

    def _read_currents(self):
        g = self._buf2
        for i in range(6):
            addr, shunt_uohm = self.ina[i]
            try:
                self.i2c.readfrom_mem_into(addr, _INA_SHUNT, g)
                uv = _s16(g, 0) * 10  # 10 uV per LSB
                self.current_ma[i] = (uv if uv >= 0 else -uv) * 1000 // shunt_uohm
                if i == 0:
                    self.i2c.readfrom_mem_into(addr, _INA_BUS, g)
                    mv = ((g[0] << 8 | g[1]) >> 3) * 4
                    self.battery_mv = mv
                    pct = (mv - _BATT_EMPTY_MV) * 100 // (_BATT_FULL_MV - _BATT_EMPTY_MV)
                    self.battery_pct = 0 if pct < 0 else 100 if pct > 100 else pct
            except OSError:
                self.current_ma[i] = 0


def _dir_pins(pins):
    in2 = Pin(pins[1], Pin.OUT, value=0) if len(pins) > 1 else None
    return (Pin(pins[0], Pin.OUT, value=0), in2)


def _atan_q14(r):
    # atan of r / 2^14 (0 <= r <= 2^14) in thousandths of a degree: the table, interpolated
    k = r >> 8
    if k >= 64:
        return _ATAN_MDEG[64]
    t = _ATAN_MDEG[k]
    return t + ((_ATAN_MDEG[k + 1] - t) * (r & 255) >> 8)


def _hypot(a, b):
    # floor(sqrt(a^2 + b^2)) for |a|, |b| < _HYPOT_MAX: Newton's method from max + min / 2,
    # never below the root, so it descends to it in a few steps
    a = a if a >= 0 else -a
    b = b if b >= 0 else -b
    n = a * a + b * b
    if n == 0:
        return 0
    x = (a + (b >> 1) if a >= b else b + (a >> 1)) + 1
    y = (x + n // x) >> 1
    while y < x:
        x = y
        y = (x + n // x) >> 1
    return x


def _atan2_cdeg(y, x):
    # atan2(y, x) in hundredths of a degree, truncated towards zero as int(degrees(...) * 100)
    # would be (within 0.001 deg), from small integers: |x|, |y| < 2^16
    ay = y if y >= 0 else -y
    ax = x if x >= 0 else -x
    if ay <= ax:
        a = _atan_q14((ay << 14) // ax) if ax else 0
    else:
        a = 90000 - _atan_q14((ax << 14) // ay)
    if x < 0:
        a = 180000 - a
    if y < 0:
        a = -a
    return a // 10 if a >= 0 else -(-a // 10)


def _s16(b, off):
    v = (b[off] << 8) | b[off + 1]
    return v - 65536 if v & 0x8000 else v
