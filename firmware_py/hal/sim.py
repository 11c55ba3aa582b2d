# sim HAL: the rover's hardware as a plant model (firmware_py.hal.plant).
#
# Runs on CPython, on the MicroPython unix port and on a real Pico with no
# motors wired (processor in the loop). The plant advances by the time elapsed
# between update() calls, so under a virtual-time asyncio loop the rover runs
# faster than real time; the plant integrates long gaps (a hibernating rover
# that wakes once a minute) exactly. The hardware watchdog is emulated: update()
# and the tasks() coroutine raise Reset(RESET_WATCHDOG) when it is not fed in time.
#
# Like the rp2 port, a commanded machine.reset() is reported as WATCHDOG at the
# next boot: the firmware's intent flag tells the two apart.
#
# Power: when the plant's battery is truly empty the board browns out: update()
# raises Reset(RESET_BROWN_OUT), and the board stays unpowered (power_good()
# waits, update() keeps raising) until the array has recharged the battery to
# the plant's REPOWER_SOC; then it boots.
#
# Virtual time: `virtual` is set by a host that runs the board on a virtual-time loop
# (hil.mission.loop); the rover then naps while idle (firmware_py.app) and says so with
# idle(on): the emulated watchdog pauses as in hibernation, and counts afresh after.
#
# SIM_INJECT faults (dictionary enum sim_fault): CLEAR, JAM, OPEN_CIRCUIT,
# ENCODER_DEAD (wheel 1-6; value < 0 clears), IMU_STUCK, BROWN_OUT (value > 0:
# the battery drops to `value` percent; value <= 0: the supply browns out and
# the board resets), SLOPE_DEG (pitch under the rover), ROCK_AHEAD_M (a 0.3 m
# rock `value` metres ahead of the front axle), SUN (0..1: the lunar afternoon when the array
# gives that share of its peak; 0 is sunset), HANG_TASK (wheel field = task id
# to hang), ROCK_HEIGHT_M (a rock `value` m tall at the rock distance ahead of
# the rover's centre, default 2.5 m, and lateral offset, default 0; value <= 0
# removes placed rocks), ROCK_LATERAL_M, ROLL_DEG, ROCK_DIST_M, TERRAIN_SEED (0: flat).
import asyncio
import math

from firmware_py.aio import sleep_ms
from firmware_py.compat import const, mem_free, ticks_diff, ticks_ms
from firmware_py.hal import RESET_BROWN_OUT, RESET_POWER_ON, RESET_WATCHDOG, Reset
from firmware_py.hal.plant import F_CLEAR, F_HANG, Plant

_WDT_POLL_MS = const(50)  # watchdog task period until the watchdog is started and fed
_OFF_POLL_MS = const(60000)  # an unpowered or hibernating board: how often power_good() and the
# paused watchdog look again
_HAZ = const(4)


class SimHal:
    name = "sim"
    virtual = False  # on a virtual-time loop (set by the host): the rover may nap while idle

    def __init__(self, board=None, link=None, seed=1, plant=None):
        board = board or {}
        enc = board.get("encoders", {})
        self.counts_per_m = enc.get("counts_per_m", 5000)
        self.heap_budget = board.get("heap_budget_kb", 192) * 1024  # octets
        self.plant = plant or Plant(seed, self.counts_per_m)
        self.link = link
        self.enc = [0] * 6
        self.current_ma = [0] * 6
        self.pitch_cdeg = 0
        self.roll_cdeg = 0
        self.yaw_urad_s = 0
        self.obstacle_mm = 0
        self.obstacle_dist_mm = 0
        self.battery_pct = 0
        self.battery_mv = 0
        self.solar_dw = 0
        self.temp_motor_cc = 0
        self.temp_board_cc = 0
        self.sun_elev_cdeg = 0
        self._soc = self._tb = self._tm = self._sw = self._se = -1e9  # the plant's, as last converted
        # hazard camera: up to 4 rocks, nearest first
        self.haz_n = 0
        self.haz_h_mm = [0] * _HAZ
        self.haz_d_mm = [0] * _HAZ
        self.haz_lat_mm = [0] * _HAZ
        self.haz_w_mm = [0] * _HAZ
        # visual-odometry pose fix (world frame)
        self.vo_seq = 0
        self.vo_x_mm = 0
        self.vo_y_mm = 0
        self.vo_h_cdeg = 0
        self.hang_task = 0
        self._brownouts = self.plant.brownouts
        self._duty_q15 = [0] * 6
        self._duty_dirty = False
        self._cause = RESET_POWER_ON
        self._last_ms = None
        self._wdt_ms = 0
        self._wdt_fed = 0
        self._pending_reset = -1
        self._resetting = False
        self.resets = 0
        self._idle = False
        self._idle_ev = None

    # -- boot and reset (the same object survives a reset, like the hardware) --
    def boot(self):
        # Called by the app at boot: forget the previous run's transient state.
        self._last_ms = None
        self._wdt_ms = 0
        self.hang_task = 0
        self._pending_reset = -1
        self._resetting = False
        self.plant.enabled = False
        for i in range(6):
            self.plant.duty[i] = 0.0
            self._duty_q15[i] = 0
        self.plant.hibernating = False

    def idle(self, on):
        # the rover naps with nothing to do (virtual time only): the watchdog pauses
        if on:
            self._idle = True
        elif self._idle:
            self._idle = False
            self._wdt_fed = ticks_ms()  # now, not the plant's last step (up to a minute ago)
            if self._idle_ev is not None:
                self._idle_ev.set()

    def reset_cause(self):
        return self._cause

    def reset(self, cause=RESET_WATCHDOG):
        # machine.reset(): rp2 reports WATCHDOG after it, and so do we.
        if not self._resetting:  # a second task may hit it before the rover stops
            self._resetting = True
            self._cause = cause
            self.resets += 1
        raise Reset(self._cause)

    # -- watchdog --
    def _now(self):
        # the plant's time (update() calls set it; stepped runners drive it)
        return self._last_ms if self._last_ms is not None else ticks_ms()

    def wdt_start(self, timeout_ms):
        # counts from the next update(): the plant's clock may not be the wall's
        self._wdt_ms = timeout_ms
        self._wdt_fed = None

    def wdt_feed(self):
        # never back in time: the plant's clock may lag a wake that already counted afresh
        t = self._now()
        fed = self._wdt_fed
        self._wdt_fed = fed if fed is not None and ticks_diff(t, fed) < 0 else t

    def _wdt_check(self, now):
        # Hibernating, the processor sleeps (an RP2040 in its dormant state stops
        # the watchdog's tick too): the watchdog is paused, as if fed.
        if self._wdt_fed is None or self.plant.hibernating or self._idle:
            self._wdt_fed = now
        elif self._wdt_ms and ticks_diff(now, self._wdt_fed) > self._wdt_ms:
            self.reset(RESET_WATCHDOG)

    async def _wdt_task(self):
        # Bites when nobody fed the watchdog for its timeout, even with the control
        # loop (which calls update()) hung. Sleeps until the moment it would bite
        # if not fed again, rather than polling: a feed meanwhile only moves that on.
        while True:
            ms = _WDT_POLL_MS
            fed = self._wdt_fed
            if self.plant.hibernating:
                ms = _OFF_POLL_MS  # paused: a hibernating board's tasks wake once a minute
            elif self._wdt_ms and fed is not None and self._last_ms is not None:
                ms = ticks_diff(fed, ticks_ms()) + self._wdt_ms + 1
                if ms < 1:
                    ms = 1
            if self._idle:
                await self._idle_nap()
            else:
                await sleep_ms(ms)
            if self._last_ms is not None:
                self._wdt_check(ticks_ms())
            if self._pending_reset >= 0:
                self.reset(self._pending_reset)

    def tasks(self):
        return (self._wdt_task(),)

    async def _idle_nap(self):
        # paused while the rover naps: until it wakes, or a minute
        ev = self._idle_ev = asyncio.Event()  # fresh: a wake before the wait starts still counts
        if not self._idle:
            return
        try:
            await asyncio.wait_for(ev.wait(), _OFF_POLL_MS // 100)
        except asyncio.TimeoutError:
            pass

    # -- actuators --
    def set_motor(self, i, duty):
        # duty: Q15 integer, -32767..32767; the plant scales it when it steps, so
        # the control loop allocates nothing here either
        self._duty_q15[i] = duty
        self._duty_dirty = True

    def motors_enable(self, on):
        self.plant.enabled = bool(on)

    def hibernate(self, on):
        # the board's load drops to the hibernation load; the watchdog pauses
        # (and counts afresh from the wake)
        if not on and self.plant.hibernating:
            self._wdt_fed = self._now()
        self.plant.hibernating = bool(on)

    def heater(self, on):
        # survival heaters: armed, a thermostat holds the box at its set point
        self.plant.heater(on)

    # -- power supply --
    def _advance(self, now_ms):
        # step the plant to now_ms (duties as last set)
        p = self.plant
        if self._duty_dirty:
            self._duty_dirty = False
            for i in range(6):
                d = self._duty_q15[i]
                p.duty[i] = d / 32767.0 if d else 0.0
        if self._last_ms is None:
            self._last_ms = now_ms
        dt_ms = ticks_diff(now_ms, self._last_ms)
        self._last_ms = now_ms
        if dt_ms > 0:
            p.step(dt_ms * 0.001)

    async def power_good(self):
        # The power supply's side of a boot: an unpowered board (browned out,
        # battery below the restart level) waits here for the array to recharge it.
        p = self.plant
        while not p.powered:
            p.enabled = False
            self._advance(ticks_ms())
            if p.powered:
                break
            await sleep_ms(_OFF_POLL_MS)

    # -- sensors --
    def update(self, now_ms):
        # Advance the plant to now_ms and refresh every sensor attribute.
        p = self.plant
        self._advance(now_ms)
        self._wdt_check(now_ms)
        if p.brown_out:
            p.brown_out = False
            self.reset(RESET_BROWN_OUT)
        if p.brownouts != self._brownouts:
            self._brownouts = p.brownouts
            self.reset(RESET_BROWN_OUT)
        if not p.powered:
            raise Reset(RESET_BROWN_OUT)  # held in reset until the battery recovers
        enc = self.enc
        cur = self.current_ma
        enc_out = p.enc_out
        pcur = p.current
        for i in range(6):
            enc[i] = enc_out[i]
            cur[i] = int(pcur[i] * 1000.0)
        self.pitch_cdeg = int(p.pitch_out * 100)
        self.roll_cdeg = int(p.roll_out * 100)
        self.yaw_urad_s = int(p.gyro_out * 1000000)
        n = p.haz_n
        # rows past both this and the last count are zero already
        m = n if n > self.haz_n else self.haz_n
        for j in range(m):
            if j < n:
                self.haz_h_mm[j] = int(p.haz_h[j] * 1000.0)
                self.haz_d_mm[j] = int(p.haz_d[j] * 1000.0)
                self.haz_lat_mm[j] = int(p.haz_lat[j] * 1000.0)
                self.haz_w_mm[j] = int(p.haz_w[j] * 1000.0)
            else:
                self.haz_h_mm[j] = 0
                self.haz_d_mm[j] = 0
                self.haz_lat_mm[j] = 0
                self.haz_w_mm[j] = 0
        self.haz_n = n
        self.obstacle_mm = int(p.obstacle_h * 1000.0)
        self.obstacle_dist_mm = int(p.obstacle_d * 1000.0)
        if p.vo_seq != self.vo_seq:
            self.vo_seq = p.vo_seq
            self.vo_x_mm = int(p.vo_x * 1000.0)
            self.vo_y_mm = int(p.vo_y * 1000.0)
            h = int(math.degrees(p.vo_h) * 100.0) % 36000
            self.vo_h_cdeg = h - 36000 if h >= 18000 else h
        # power and thermal change once per plant power step (a second or more): the
        # readings are converted again only when one of them has changed
        soc = p.soc
        tb = p.temp_board
        if soc != self._soc or tb != self._tb or p.temp_motor != self._tm or p.solar_w != self._sw \
                or p.sun_elev_deg != self._se:
            self._soc = soc
            self._tb = tb
            self._tm = p.temp_motor
            self._sw = p.solar_w
            self._se = p.sun_elev_deg
            self.battery_pct = int(soc * 100.0 + 0.5)
            self.battery_mv = int(p.battery_v() * 1000.0)
            self.solar_dw = int(p.solar_w * 10.0)
            self.sun_elev_cdeg = int(p.sun_elev_deg * 100.0)
            self.temp_motor_cc = int(p.temp_motor * 100.0)
            self.temp_board_cc = int(tb * 100.0)

    def mem_free(self):
        # the unix port and a Pico: gc.mem_free(); CPython: the board's heap
        # budget (see compat.mem_free)
        return mem_free(self.heap_budget)

    # -- fault injection --
    def inject(self, fault, wheel, value):
        # Returns False when the fault needs a wheel and none was given.
        if fault == F_HANG:
            self.hang_task = wheel
            return True
        if fault == F_CLEAR:
            self.hang_task = 0
        return self.plant.inject(fault, wheel, value)
