# ruff: noqa: UP031, B904  (MicroPython-compatible: %-formatting, no exception chaining)
# Board definitions: load a boards/<name>.json and check it against its chip.
#
# MicroPython-compatible (the board reads its own definition at boot) and CPython.
#
#   load(name_or_path) -> dict     "pico", "pico_w", "pico2", "sim" or a path to a .json
#   validate(board)                raises BoardError with one clear line on the first
#                                  problem: unknown chip or HAL, pin not on the chip,
#                                  pin reserved by the board (pico_w: CYW43 on GP23,
#                                  24, 25, 29), pin used twice, two motors on one PWM
#                                  slice with different frequencies, watchdog beyond
#                                  the chip's maximum (or under 2 s: the slowest task
#                                  checks in once a second), wrong mpy-cross arch, heap
#                                  budget beyond the chip's RAM, unknown link kind, link
#                                  UART pins that are not that UART's TX/RX on the chip
#   own_link(board) -> bool        True when the rover's link has its own interface (a
#                                  UART; the virtual board's second pty), so the REPL's
#                                  USB CDC (or pty) stays free for mpremote and the flash tool
#   pwm_slice(chip, gpio) -> slice
#   uart_of(gpio) -> (uart, "tx" | "rx") or None   the RP2040/RP2350 UART function of a pin
#   NAMES                          the boards shipped here
#
# Wiring model (see the JSON files): three dual motor drivers (TB6612FNG) give six
# PWM channels, one per wheel; wheels on one side share their direction pins
# (skid steering turns a whole side one way), and the drivers' STBY lines are tied
# to one enable pin that only the safety component drives. Six quadrature encoders
# on consecutive GPIO pairs (PIO or pin IRQs). An I2C bus carries the IMU (MPU-6050)
# and six INA219 current sensors. Each side's direction is two pins (TB6612 IN1, IN2)
# or one pin (IN1; IN2 through an inverter: the HAL only ever drives them opposite).
#
# The rover's link ("link"): {"kind": "usb_cdc"} (or "stdio") is the REPL's own console,
# binary frames after boot; {"kind": "uart", "uart": 0, "baud": 115200, "tx": 0, "rx": 1}
# is a UART of its own (on a Pico: GP0/GP1 as through a Pico debug probe; a sim board
# names no pins: the virtual board gives it a second pty).
import json

NAMES = ("pico", "pico_w", "pico2", "pico_uart", "sim", "sim_uart")
LINK_KINDS = ("usb_cdc", "stdio", "uart")
CONSOLE_LINKS = ("usb_cdc", "stdio")  # the link shares the REPL's console

CHIPS = {
    # gpio: GPIO count; wdt_max_ms: machine.WDT limit; ram_kb: SRAM
    "rp2040": {"gpio": 30, "wdt_max_ms": 8388, "arch": "armv6m", "ram_kb": 264},
    "rp2350": {"gpio": 30, "wdt_max_ms": 16777, "arch": "armv7emsp", "ram_kb": 520},
    "sim": {"gpio": 0, "wdt_max_ms": 0x7FFFFFFF, "arch": None, "ram_kb": 1 << 20},
}
HALS = ("rp2", "sim")


class BoardError(ValueError):
    pass


def _dir():
    try:
        f = __file__
    except NameError:
        return "boards"
    i = f.rfind("/")
    return f[:i] if i >= 0 else "."


def pwm_slice(chip, gpio):
    # RP2040: slice = (gpio >> 1) & 7. RP2350: the same for GPIO 0-31, slices 8-11
    # for GPIO 32-47 (RP2350B).
    if chip == "rp2350" and gpio >= 32:
        return 8 + ((gpio >> 1) & 3)
    return (gpio >> 1) & 7


def uart_of(gpio):
    # RP2040 (and RP2350 on GP0-29) UART function select: GP0 UART0 TX, GP1 RX, GP4 UART1
    # TX, GP5 RX, then every 8 pins the same (GP12/13, 16/17, 28/29 UART0; 8/9, 20/21,
    # 24/25 UART1); pins 2 and 3 of each 4 are CTS/RTS.
    if gpio & 3 > 1:
        return None
    return ((gpio + 4) & 8) >> 3, "rx" if gpio & 1 else "tx"


def own_link(board):
    # True when the rover's link is not the REPL's console.
    return ((board.get("link") or {}).get("kind") or "usb_cdc") not in CONSOLE_LINKS


def load(name):
    path = name if name.endswith(".json") else _dir() + "/" + name + ".json"
    try:
        with open(path) as f:
            board = json.load(f)
    except OSError:
        raise BoardError("board %s: no such file %s (boards: %s)" % (name, path, ", ".join(NAMES)))
    except ValueError as e:
        raise BoardError("board %s: %s is not valid JSON (%s)" % (name, path, e))
    validate(board)
    return board


def _pins(board):
    # [(gpio, what)] for every pin the board uses
    out = []
    md = board.get("motor_driver") or {}
    if "standby_pin" in md:
        out.append((md["standby_pin"], "motor driver STBY"))
    for side in ("left", "right"):
        for p in (board.get("direction_pins") or {}).get(side, ()):
            out.append((p, side + " direction"))
    for m in board.get("motors") or ():
        out.append((m["pwm"], "motor %d PWM" % m["wheel"]))
    enc = board.get("encoders") or {}
    for i, pair in enumerate(enc.get("pins") or ()):
        for p in pair:
            out.append((p, "encoder %d" % (i + 1)))
    i2c = board.get("i2c")
    if i2c:
        out.append((i2c["sda"], "I2C SDA"))
        out.append((i2c["scl"], "I2C SCL"))
    link = board.get("link") or {}
    for k in ("tx", "rx"):
        if k in link:
            out.append((link[k], "link UART " + k.upper()))
    led = board.get("led_pin")
    if led is not None:
        out.append((led, "LED"))
    return out


def validate(board):
    name = board.get("name", "?")

    def err(msg):
        raise BoardError("board %s: %s" % (name, msg))

    chip = board.get("chip")
    if chip not in CHIPS:
        err("chip %r is not one of %s" % (chip, ", ".join(sorted(CHIPS))))
    c = CHIPS[chip]
    if board.get("hal") not in HALS:
        err("hal %r is not one of %s" % (board.get("hal"), ", ".join(HALS)))
    wdt = (board.get("watchdog") or {}).get("timeout_ms")
    if not isinstance(wdt, int) or wdt <= 0:
        err("watchdog.timeout_ms must be a positive integer, got %r" % (wdt,))
    if wdt < 2000:
        err("watchdog.timeout_ms %d is too short: the slowest task checks in once a second (>= 2000)" % wdt)
    if wdt > c["wdt_max_ms"]:
        err("watchdog.timeout_ms %d is beyond the %s maximum of %d ms" % (wdt, chip, c["wdt_max_ms"]))
    if board.get("mpy_arch") != c["arch"]:
        err("mpy_arch %r does not match %s (expected %r)" % (board.get("mpy_arch"), chip, c["arch"]))
    boot_s = board.get("boot_timeout_s", 1)  # seconds `farside flash` waits for BOOT
    if isinstance(boot_s, bool) or not isinstance(boot_s, (int, float)) or not boot_s > 0:
        err("boot_timeout_s %r must be a positive number of seconds" % (boot_s,))
    heap = board.get("heap_budget_kb")
    if not isinstance(heap, int) or heap <= 0 or heap > c["ram_kb"]:
        err("heap_budget_kb %r must be 1..%d for %s" % (heap, c["ram_kb"], chip))
    _check_link(board, chip, err)
    if chip == "sim":
        return
    reserved = {}
    for r in board.get("reserved_pins") or ():
        reserved[r["gpio"]] = r.get("use", "reserved")
    seen = {}
    for gpio, what in _pins(board):
        if not isinstance(gpio, int) or not 0 <= gpio < c["gpio"]:
            err("%s on GP%s: %s has GPIO 0..%d" % (what, gpio, chip, c["gpio"] - 1))
        if gpio in reserved:
            err("%s on GP%d: the pin is used by the board (%s)" % (what, gpio, reserved[gpio]))
        if gpio in seen:
            err("GP%d used twice: %s and %s" % (gpio, seen[gpio], what))
        seen[gpio] = what
    for side in ("left", "right"):
        n = len((board.get("direction_pins") or {}).get(side) or ())
        if n not in (1, 2):
            err("direction_pins.%s: one pin (IN2 through an inverter) or two, got %d" % (side, n))
    motors = board.get("motors") or ()
    if len(motors) != 6 or sorted(m["wheel"] for m in motors) != [1, 2, 3, 4, 5, 6]:
        err("six motors with wheels 1..6 are required, got %d" % len(motors))
    slices = {}
    for m in motors:
        s = pwm_slice(chip, m["pwm"])
        f = m.get("freq_hz")
        if not isinstance(f, int) or f <= 0:
            err("motor %d: freq_hz must be a positive integer" % m["wheel"])
        if s in slices and slices[s][1] != f:
            err(
                "motors %d and %d share PWM slice %d (GP%d, GP%d) but ask for %d Hz and %d Hz"
                % (slices[s][0], m["wheel"], s, slices[s][2], m["pwm"], slices[s][1], f)
            )
        slices[s] = (m["wheel"], f, m["pwm"])
    enc = board.get("encoders") or {}
    pins = enc.get("pins") or ()
    if len(pins) != 6:
        err("six encoders are required, got %d" % len(pins))
    if enc.get("method") == "pio":
        for i, pair in enumerate(pins):
            if len(pair) != 2 or pair[1] != pair[0] + 1:
                err("encoder %d: PIO quadrature needs two consecutive pins, got %r" % (i + 1, pair))
        if len(pins) > 8:
            err("at most 8 PIO state machines")


def _check_link(board, chip, err):
    link = board.get("link") or {}
    kind = link.get("kind") or "usb_cdc"
    if kind not in LINK_KINDS:
        err("link.kind %r is not one of %s" % (kind, ", ".join(LINK_KINDS)))
    if kind != "uart":
        return
    baud = link.get("baud")
    if not isinstance(baud, int) or baud <= 0:
        err("link.baud must be a positive integer, got %r" % (baud,))
    uart = link.get("uart")
    if chip == "sim":
        return
    if uart not in (0, 1):
        err("link.uart %r: %s has UART0 and UART1" % (uart, chip))
    for k in ("tx", "rx"):
        gpio = link.get(k)
        if not isinstance(gpio, int):
            err("link.%s: a UART link needs its %s pin, got %r" % (k, k.upper(), gpio))
        if uart_of(gpio) != (uart, k):
            err(
                "link UART %s on GP%d: not a UART%d %s pin on %s (UART%d %s: %s)"
                % (
                    k.upper(),
                    gpio,
                    uart,
                    k.upper(),
                    chip,
                    uart,
                    k.upper(),
                    ", ".join("GP%d" % g for g in range(30) if uart_of(g) == (uart, k)),
                )
            )
