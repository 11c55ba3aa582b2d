# The rover application: every component wired together on asyncio.
#
#   rover = Rover(board, hal, root="", link_stream=None)
#       board        dict from boards/<name>.json (boards.load)
#       hal          firmware_py.hal.sim.SimHal or firmware_py.hal.rp2.Rp2Hal
#       root         folder holding dictionary.json (canonical bytes), keys.json,
#                    and the rover's own files: params.json, boot.json, ttq.json,
#                    time.json, reset_intent, sdls_state.json, sdls_keys.json ("" is
#                    the current folder)
#       link_stream  read_into(buf) -> n (non-blocking) / write(buf); default hal.link
#       dictionary   a firmware_py.dictionary.Dictionary already loaded (else it is
#                    loaded from root; on a small heap load it before importing
#                    this module: it needs one contiguous buffer of the file's size)
#   await rover.run()
#       boots (boot count, reset cause, params, time-tagged queue, BOOT event,
#       watchdog) and runs until the board resets: raises hal Reset (sim) or
#       EnterRepl (ENTER_REPL command); machine.reset() on rp2 never returns.
#   await run_forever(board, hal, root, link_stream, on_boot=None, max_boots=0,
#                     dictionary=None)   the sim "power supply":
#       restarts the rover after each Reset, keeping root (its flash) and the hal
#       (its hardware and plant); returns on EnterRepl.
#   boot_loop(board, hal, root, link_stream, dictionary=None, max_boots=0)
#       the same, synchronous, one asyncio.run per boot: what main.py uses on a
#       board (a reset rover's heap is reclaimed completely under MicroPython).
#   start_background(board, hal, root, link_stream, dictionary=None)
#       boot_loop in a thread of its own (core 1 on a Pico), for a board whose link
#       has its own interface: main.py returns and the REPL stays free.
#   rover.step(now_ms)  one control period without asyncio, with time advanced by
#       the caller (scenario runners under the unix port, benchmarks).
#
# Tasks (ids are what the watchdog and SIM_INJECT HANG_TASK use):
#   1 control  100 ms (10 Hz) while driving, 250 ms otherwise: hal.update, drive, safety,
#              time-tagged commands that are due (released within one period of their time)
#   2 link     20 ms while the uplink is busy or TM is queued, 100 ms when quiet: TC in, TM out
#   3 telemetry until the next HK is due (1 s at most): HK at its period (at most
#              once a minute in HIBERNATE); the link task sends a due one (mode change)
#   4 housekeeping 1 s: clock, power, time-tagged queue
#   + watchdog (feeds when 1-4 checked in) + the HAL's own (sim watchdog)
# In HIBERNATE no task wakes more than once per _HIB_MS (60 s) of rover time (the
# control task sooner only for a time-tagged command due earlier), so a virtual-time
# loop jumps through the night; the housekeeping task that wakes the rover polls the
# link and telemetry itself, so the ground sees the wake without waiting for them.
# The watchdog task feeds the hardware each time it wakes while hibernating (the
# board's hibernation keeps only the wake timer and the heaters' thermostat).
# Virtual time only (a HAL with `virtual` true: the sim board on a virtual-time loop,
# never a real board): an awake rover with nothing to do (STANDBY or SAFE, disarmed,
# stopped, the uplink quiet, nothing queued, HK at most once a minute) naps the same
# way, so the loop jumps through an idle lunar day too; `rouse()` (octets arrived, the
# plant was changed from outside) or any task that finds work ends every nap at once.
import asyncio
import json
import struct

from firmware_py import modes
from firmware_py.aio import sleep_ms
from firmware_py.compat import MICROPYTHON, const, ticks_diff, ticks_ms, ticks_us
from firmware_py.dictionary import Dictionary
from firmware_py.dispatcher import Dispatcher
from firmware_py.drive import Drive
from firmware_py.events import Events, table_from
from firmware_py.farm import Farm
from firmware_py.hal import (
    RESET_BROWN_OUT,
    RESET_COMMANDED,
    RESET_SOFT,
    RESET_WATCHDOG,
    EnterRepl,
    Reset,
)
from firmware_py.link import Link
from firmware_py.modes import Modes
from firmware_py.params import Params, join, read_json, write_atomic
from firmware_py.pktstore import PktStore
from firmware_py.power import Power
from firmware_py.safety import Safety
from firmware_py.sastore import SaStore
from firmware_py.sdls import Security, load_key_file
from firmware_py.sequencer import Sequencer
from firmware_py.telemetry import Telemetry
from firmware_py.tm_frame import TmFramer
from firmware_py.version import VERSION
from firmware_py.watchdog import Watchdog

T_CONTROL = const(1)
T_LINK = const(2)
T_TELEMETRY = const(3)
T_HOUSEKEEPING = const(4)

CONTROL_MS = const(100)
_IDLE_MS = const(250)
_EV_BOOT = const(1)
_EV_MODE = const(2)
_EV_LINK_LOST = const(14)
_EV_LINK_RESTORED = const(15)
_EV_OVERRUN = const(23)
_P_LINK_TIMEOUT = const(5)
_P_RESET_SAFE = const(11)
_P_AUTH_PERIOD = const(20)
_EV_SA_STATUS = const(30)
_EV_STORE_RAM_ONLY = const(33)
_TIME_SAVE_S = const(60)
_TIME_SAVE_HIB_S = const(900)  # while hibernating (a flash write a minute was most of a night's cost)
# The rover thread's stack. rp2: from the heap, 512 octets of it kept to recover from an
# overflow. Unix port: 8 KB of it kept; the rover needs 8-10 KB there (64-bit).
_STACK_RP2 = const(16384)
_STACK_UNIX = const(32768)
_HIB_HK_MS = const(60000)  # HK once a minute while hibernating
_HIB_MS = const(60000)  # every task's period while hibernating
_IDLE_NAP_MS = const(600000)  # an idle rover's longest nap (virtual time only)
_LINK_QUIET_MS = const(100)  # the link's idle poll period (firmware_py.link): nothing pending


class Rover:
    def __init__(self, board, hal, root="", link_stream=None, dictionary=None):
        self.board = board
        self.hal = hal
        # the packet store's ring first, while the heap still has a block that large
        # (HK kept one a minute at 1 Hz: 4 KB then spans a 15-minute relay outage)
        self.store = PktStore(
            board.get("tm_store_octets", 4096), board.get("tm_store_packets", 96), board.get("tm_store_hk_every", 60)
        )
        # set while not napping: ends the tasks' long naps. Never cleared: a nap starts a
        # fresh one, so a task whose wait begins a moment late cannot miss a wake
        self._awake = asyncio.Event()
        self._awake.set()
        self._virtual = getattr(hal, "virtual", False)  # a virtual-time loop: idle naps allowed
        self.root = root
        d = self.dictionary = dictionary or Dictionary(join(root, "dictionary.json"))
        table = []
        params = d.params  # decoded on each access: once here
        for pid in params:
            e = params[pid]
            table.append((pid, e[1], e[2], e[3]))
        params = None
        self.params = Params(tuple(table), root)
        self.events = Events(table_from(d), self._send_event)
        self.modes = Modes(self._mode_changed)
        self.safety = Safety(hal, self.params, self.modes, self.events, board)
        self.drive = Drive(board, hal, self.params, self.modes, self.safety, self.events)
        self.power = Power(hal, self.params, self.modes, self.events, self.drive)
        m = d.mission
        self.farm = Farm(m.get("tc_vcid", 1), 64)
        # link security: SAs from keys.json, their marks and loaded keys on flash
        sas, master, tm_spi = load_key_file(join(root, "keys.json"))
        self.security = Security(
            sas, m.get("auth", {}).get("replay_window", 64), SaStore(root), master, tm_spi
        )
        self.link = Link(
            link_stream or hal.link, self.security, self.farm, self.events, self.clock,
            self._on_packet, m,
        )
        # the packet store (TM_RETRIEVE): its own frames on the store's virtual channel
        fr = self.link.framer
        self.store.attach(
            TmFramer(self.link.scid, m.get("tm_store_vcid", 1), fr.frame_len, fr.write, self.farm.clcw)
        )
        self.link.store = self.store
        self.dispatcher = Dispatcher(self, d, self.link.send_data, self.link.data)
        self.store.on_done = self._retrieved
        self.drive.on_done = self.dispatcher.done
        self.sequencer = Sequencer(root, self.dispatcher.on_packet, self.events)
        self.telemetry = Telemetry(
            d.hk_format(1), d.hk_names(1), self._hk_sources(), self.link.data,
            self.link.send_data, 1, 1000,
        )
        wdt = board.get("watchdog", {}).get("timeout_ms", 5000)
        self.watchdog = Watchdog(hal, wdt, (T_CONTROL, T_LINK, T_TELEMETRY, T_HOUSEKEEPING))
        # clock: uptime since boot, rover time = t0_s + (uptime - t0_up) / 1000
        self.uptime_ms = 0
        self._t0_s = 0
        self._t0_up_ms = 0
        self._last_ms = None
        self._saved_time_s = 0
        self.boot_count = 0
        self.reset_cause = 0
        self.unexpected_resets = 0
        self.loop_worst_us = 0
        self.link_lost = False
        self._exit = None
        self._ctrl_last = None
        self._wd_last = 0

    # -- clock --
    def _advance(self, now_ms):
        if self._last_ms is None:
            self._last_ms = now_ms
        d = ticks_diff(now_ms, self._last_ms)
        if d > 0:
            self.uptime_ms += d
            self._last_ms = now_ms

    @property
    def time_s(self):
        t = self._t0_s + (self.uptime_ms - self._t0_up_ms) // 1000
        # the CUC coarse time is a 4-octet counter: it rolls over (CCSDS 301.0), never overflows;
        # compared first, so the common case allocates no long int on a 32-bit port
        if t > 0xFFFFFFFF:
            t &= 0xFFFFFFFF
        return t

    def clock(self):
        ms = self.uptime_ms - self._t0_up_ms
        t = self._t0_s + ms // 1000
        if t > 0xFFFFFFFF:
            t &= 0xFFFFFFFF
        return t, ((ms % 1000) * 65536) // 1000

    def set_time(self, time_s, ms=0):
        self._t0_s = time_s
        self._t0_up_ms = self.uptime_ms - ms
        self._save_time()
        self.events.emit(19, time_s)

    def adjust_time(self, delta_ms):
        ms = self.uptime_ms - self._t0_up_ms + delta_ms
        self._t0_up_ms = self.uptime_ms - ms % 1000
        self._t0_s += ms // 1000
        if self._t0_s < 0:
            self._t0_s = 0
        self._save_time()
        self.events.emit(19, self.time_s)

    def _save_time(self):
        self._saved_time_s = self.time_s
        write_atomic(join(self.root, "time.json"), json.dumps({"time_s": self._saved_time_s}))

    # -- events and modes --
    def _send_event(self, sub, mv, n):
        self.link.send(5, sub, mv, n)

    def _mode_changed(self, frm, to, reason):
        if to == modes.HIBERNATE:
            if self._awake.is_set():
                self._awake = asyncio.Event()
        else:
            self.rouse()
        self.events.emit(_EV_MODE, frm, to, reason)
        self.telemetry.due = True  # the ground sees the new mode at once

    def _retrieved(self, token):
        # the retrieval report (TM 15/10), then TM 1/7: both after the packets sent again
        st = self.store
        struct.pack_into(">HHHH", self.link.data, 0, self.link.tm.apid, st.first, st.range_count, st.sent)
        self.link.send_data(15, 10, 8)
        self.dispatcher.done(token, 0)

    def _on_packet(self, buf, start, end):
        if self.link_lost:
            self.link_lost = False
            self.events.emit(_EV_LINK_RESTORED)
        self.dispatcher.on_packet(buf, start, end)

    # -- boot --
    def boot(self):
        hal = self.hal
        if hasattr(hal, "boot"):
            hal.boot()
        cause = hal.reset_cause()
        intent = join(self.root, "reset_intent")
        try:
            import os

            os.stat(intent)
            os.remove(intent)
            if cause == RESET_WATCHDOG or cause == RESET_SOFT:
                cause = RESET_COMMANDED
        except OSError:
            pass
        self.reset_cause = cause
        # the packet store's journal, on a board with a filesystem: what the last boots sent
        # goes back into the store, and the packet count goes on where it was
        jo = self.board.get("tm_store_journal_octets", 0)
        if jo:
            from firmware_py.pktjournal import Journal

            self.link.tm.seq_count = Journal(self.store, jo).open(self.root)
        self.params.load()
        rec = read_json(join(self.root, "boot.json")) or {}
        self.boot_count = (rec.get("count", 0) + 1) & 0xFFFF
        unexpected = cause == RESET_WATCHDOG or cause == RESET_BROWN_OUT
        self.unexpected_resets = rec.get("unexpected", 0) + 1 if unexpected else 0
        write_atomic(
            join(self.root, "boot.json"),
            json.dumps({"count": self.boot_count, "unexpected": self.unexpected_resets}),
        )
        t = read_json(join(self.root, "time.json"))
        if t:
            self._t0_s = int(t.get("time_s", 0))
            self._saved_time_s = self._t0_s
        self.sequencer.load()
        self.events.emit(
            _EV_BOOT, VERSION, self.boot_count, cause, self.dictionary.hash
        )
        sec = self.security
        for spi in sec.spis():  # the ground resumes its sequence numbers above these
            self.events.emit(_EV_SA_STATUS, spi, sec.mark(spi), sec.key_id(spi))
        self.link.auth_period_ms = int(self.params.v[_P_AUTH_PERIOD] * 1000)
        if self.unexpected_resets >= self.params.v[_P_RESET_SAFE]:
            self.modes.request(modes.SAFE, modes.R_RESETS)
        else:
            self.modes.request(modes.STANDBY, modes.R_BOOT)
        if MICROPYTHON:
            # boot's garbage (files read and parsed, modules loaded on first use) goes now:
            # HK free_heap is gc.mem_free(), live heap plus garbage not yet collected, so
            # the first report after BOOT is the heap left to the rover (less about a
            # second's allocations), not wherever the collector's cycle happens to be
            import gc

            gc.collect()
        self.watchdog.start()

    # -- commands that end the run --
    def request_reboot(self):
        self._exit = "reboot"

    def request_repl(self):
        self._exit = "repl"

    def _finish_exit(self):
        self.link.framer.flush()
        why = self._exit
        self._exit = None
        self.safety.disarm()
        if why == "repl":
            if getattr(self.hal, "name", "") == "rp2":
                # machine.WDT cannot be stopped: reset, and main() stays at the
                # REPL on the next boot without starting the flight software
                write_atomic(join(self.root, "enter_repl"), "1")
                write_atomic(join(self.root, "reset_intent"), "1")
                self.hal.reset()
            raise EnterRepl()
        write_atomic(join(self.root, "reset_intent"), "1")
        self.hal.reset()  # rp2 and the sim report WATCHDOG; the intent flag says COMMANDED

    # -- one control period (also used by stepped runners) --
    def control(self, now_ms):
        t0 = ticks_us()
        if self._ctrl_last is None:
            self._ctrl_last = now_ms
        dt_ms = ticks_diff(now_ms, self._ctrl_last)
        self._ctrl_last = now_ms
        self._advance(now_ms)
        self.hal.update(now_ms)
        self.drive.step(dt_ms)
        sq = self.sequencer.q
        if sq and sq[0][0] <= self.time_s:
            self.sequencer.poll(self.time_s)
        us = ticks_diff(ticks_us(), t0)
        if us > self.loop_worst_us:
            self.loop_worst_us = us

    def housekeeping(self, dt_s):
        self.power.step(dt_s)
        note = self.store.ram_note
        if note:  # the packet store lost its journal (no filesystem, a write error): said once
            self.store.ram_note = ()
            self.events.emit(_EV_STORE_RAM_ONLY, note[0], note[1] & 0xFFFF)
        self.link.auth_period_ms = int(self.params.v[_P_AUTH_PERIOD] * 1000)
        self.sequencer.poll(self.time_s)
        hib = self.modes.mode == modes.HIBERNATE
        if self.time_s - self._saved_time_s >= (_TIME_SAVE_HIB_S if hib else _TIME_SAVE_S):
            self._save_time()
        silence_ms = self.uptime_ms - (self.link.last_tc_ms or 0)
        if not self.link_lost and silence_ms > self.params.v[_P_LINK_TIMEOUT] * 1000:
            self.link_lost = True
            self.events.emit(_EV_LINK_LOST, silence_ms // 1000)
            if self.modes.mode != modes.HIBERNATE:
                self.modes.request(modes.SAFE, modes.R_LINK_LOSS)

    def step(self, now_ms):
        # Everything one control period does, called with the caller's clock:
        # for stepped runs without asyncio (the unix port's scenario runner).
        self.control(now_ms)
        self.link.poll(self.uptime_ms)
        if self._exit:
            self._finish_exit()
        self.telemetry.poll(self.uptime_ms, _HIB_HK_MS if self.modes.mode == modes.HIBERNATE else 0)
        s = self.uptime_ms // 1000
        if s != getattr(self, "_hk_s", -1):
            self._hk_s = s
            self.housekeeping(1)
        hung = self.hal_hang()
        wd = self.watchdog
        for t in (T_CONTROL, T_LINK, T_TELEMETRY, T_HOUSEKEEPING):
            if t != hung:
                wd.checkin(t)
        if ticks_diff(now_ms, self._wd_last) >= wd.timeout_ms // 4:
            self._wd_last = now_ms
            wd.poll()

    # -- tasks --
    async def _hang_if(self, tid):
        # SIM_INJECT HANG_TASK: this task stops checking in (the watchdog must bite)
        while self.hal_hang() == tid:
            await sleep_ms(1000)

    def hal_hang(self):
        return getattr(self.hal, "hang_task", 0)

    async def _control_task(self):
        while True:
            self.control(ticks_ms())
            self.watchdog.checkin(T_CONTROL)
            if self.hal_hang() == T_CONTROL:
                await self._hang_if(T_CONTROL)
            if self._may_nap():
                await self._nap(self._hib_wait_ms())
            else:
                self._busy()
                await sleep_ms(CONTROL_MS if self.safety.armed or self.drive.v16 > 16 or self.drive.v16 < -16 else _IDLE_MS)

    def rouse(self):
        # end every task's nap (not hibernation's: the mode change does that)
        if not self._awake.is_set() and self.modes.mode != modes.HIBERNATE:
            self._awake.set()
            if self._virtual:
                self.hal.idle(False)

    def _busy(self):
        # a task that found work while others nap (virtual time only) wakes them
        if not self._awake.is_set():
            self.rouse()

    def _idle(self):
        # awake with nothing to do for a while (virtual time only, see the header)
        m = self.modes.mode
        if m != modes.STANDBY and m != modes.SAFE:
            return False
        dr = self.drive
        tm = self.telemetry
        if self.safety.armed or dr.kind != 0 or dr.v16 > 16 or dr.v16 < -16:
            return False
        if tm.due or tm.period_ms < _HIB_HK_MS or self._exit or self.hal_hang():
            return False
        return self.link.poll_ms(self.uptime_ms) >= _LINK_QUIET_MS

    def _may_nap(self):
        # HIBERNATE, or idle in virtual time: the tasks nap until their next work
        if self.modes.mode == modes.HIBERNATE:
            return True
        if not self._virtual or not self._idle():
            return False
        if self._awake.is_set():
            self._awake = asyncio.Event()
            self.hal.idle(True)
        return True

    async def _nap(self, ms):
        # Sleep ms while hibernating, or until the rover wakes (every task then
        # returns to its own period before the watchdog misses it).
        ev = self._awake
        if ev.is_set():
            return
        try:
            if MICROPYTHON:
                await asyncio.wait_for_ms(ev.wait(), ms)
            else:
                await asyncio.wait_for(ev.wait(), ms / 1000)
        except asyncio.TimeoutError:
            pass

    def _nap_ms(self):
        # a nap: a minute while hibernating; longer while idle in virtual time
        return _HIB_MS if self.modes.mode == modes.HIBERNATE else _IDLE_NAP_MS

    def _hib_wait_ms(self):
        # the control task's nap: a minute while hibernating (see _nap_ms), or until
        # the next time-tagged command is due
        cap = self._nap_ms()
        sq = self.sequencer.q
        if sq:
            ms = (sq[0][0] - self.time_s) * 1000
            if ms < cap:
                return ms if ms > CONTROL_MS else CONTROL_MS
        return cap

    async def _link_task(self):
        while True:
            self._advance(ticks_ms())
            self.link.poll(self.uptime_ms)
            if self._exit:
                self._finish_exit()
            if self.telemetry.due:  # a mode change: the ground sees it at once
                self.telemetry.poll(self.uptime_ms)
            self.watchdog.checkin(T_LINK)
            if self.hal_hang() == T_LINK:
                await self._hang_if(T_LINK)
            ms = self.link.poll_ms(self.uptime_ms)
            if ms >= _LINK_QUIET_MS and self._may_nap():
                await self._nap(self._nap_ms())  # nothing to send, nothing arriving
            else:
                self._busy()
                await sleep_ms(ms)

    async def _telemetry_task(self):
        tm = self.telemetry
        while True:
            self._advance(ticks_ms())
            floor = _HIB_HK_MS if self.modes.mode == modes.HIBERNATE else 0
            sent = tm.sent
            tm.poll(self.uptime_ms, floor)
            self.watchdog.checkin(T_TELEMETRY)
            if self.hal_hang() == T_TELEMETRY:
                await self._hang_if(T_TELEMETRY)
            if self._may_nap():
                if tm.sent != sent and not floor:
                    self.link.poll(self.uptime_ms)  # idle: the napping link task would hold it
                # until the next HK (wait_ms caps at a second)
                last = tm._last
                per = tm.period_ms if tm.period_ms > floor else floor
                ms = per if last is None else per - ticks_diff(self.uptime_ms, last)
                await self._nap(ms if ms > 1000 else 1000)
            else:
                self._busy()
                await sleep_ms(tm.wait_ms(self.uptime_ms, floor))

    async def _housekeeping_task(self):
        last = self.uptime_ms
        while True:
            self._advance(ticks_ms())
            hib = self.modes.mode == modes.HIBERNATE
            if hib:
                self.control(ticks_ms())  # the sensors as of now (a wake decides on them)
            dt_s = (self.uptime_ms - last) // 1000
            last += dt_s * 1000
            self.housekeeping(dt_s)
            if hib and self.modes.mode != modes.HIBERNATE:
                # woken: the link and HK tasks may be asleep for most of a minute
                self.link.poll(self.uptime_ms)
                self.telemetry.poll(self.uptime_ms)
            self.watchdog.checkin(T_HOUSEKEEPING)
            if self.hal_hang() == T_HOUSEKEEPING:
                await self._hang_if(T_HOUSEKEEPING)
            if self._may_nap():
                await self._nap(self._nap_ms())
            else:
                self._busy()
                await sleep_ms(1000)

    async def _watchdog_task(self):
        period = self.watchdog.timeout_ms // 4
        while True:
            if self._may_nap():
                await self._nap(self._nap_ms())
                self.hal.wdt_feed()
            else:
                self._busy()
                await sleep_ms(period)
                self.watchdog.poll()

    async def _guard(self, coro):
        # Run one task; whatever ends it (Reset, EnterRepl, a bug) stops the rover
        # and is re-raised by run() in the caller's task, so no exception is left
        # inside a child task (MicroPython keeps those, and the whole rover, alive).
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # noqa: BLE001 - handed to run()
            if self._fail is None:
                self._fail = e
            self._stop.set()

    async def run(self):
        self.boot()
        self._fail = None
        self._stop = asyncio.Event()
        coros = [
            self._control_task(),
            self._link_task(),
            self._telemetry_task(),
            self._housekeeping_task(),
            self._watchdog_task(),
        ]
        if hasattr(self.hal, "tasks"):
            coros.extend(self.hal.tasks())
        tasks = [asyncio.create_task(self._guard(c)) for c in coros]
        try:
            await self._stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            self.safety.disarm()
            if self.store.journal is not None:
                self.store.journal.close()
        await sleep_ms(0)  # let the cancelled tasks unwind
        tasks = None
        fail = self._fail
        self._fail = None
        raise fail

    # -- housekeeping values (raw, as the dictionary's HK_ROVER defines them) --
    def _hk_sources(self):
        hal = self.hal
        dr = self.drive
        nav = dr.nav
        sf = self.safety
        lk = self.link
        fm = self.farm
        ds = self.dispatcher
        src = {
            "uptime_s": lambda: self.uptime_ms // 1000,
            "rover_time_s": lambda: self.time_s,
            "mode": lambda: self.modes.mode,
            "boot_count": lambda: self.boot_count,
            "reset_cause": lambda: self.reset_cause,
            "dict_hash": lambda: self.dictionary.hash,
            "x_m": lambda: dr.x_um // 1000,
            "y_m": lambda: dr.y_um // 1000,
            "heading_deg": dr.heading_cdeg,
            "speed_mph": dr.speed_dmph,
            "odometer_m": lambda: dr.odometer_um // 1000,
            "pitch_deg": lambda: hal.pitch_cdeg,
            "roll_deg": lambda: hal.roll_cdeg,
            "battery_pct": lambda: hal.battery_pct,
            "battery_v": lambda: hal.battery_mv,
            "solar_w": lambda: hal.solar_dw,
            "temp_motor_c": lambda: hal.temp_motor_cc,
            "temp_board_c": lambda: hal.temp_board_cc,
            "tc_frames_ok": lambda: lk.frames_ok & 0xFFFF,
            "tc_frames_bad": lambda: lk.frames_bad & 0xFFFF,
            "tc_auth_rejected": lambda: lk.auth_rejected & 0xFFFF,
            "tm_packets": lambda: lk.tm_packets & 0xFFFF,
            "clcw": lambda: lk.last_clcw,
            "farm_vr": lambda: fm.vr,
            "farm_lockout": lambda: fm.lockout,
            "cmd_accepted": lambda: ds.accepted & 0xFFFF,
            "cmd_rejected": lambda: ds.rejected & 0xFFFF,
            "cmd_completed": lambda: ds.completed & 0xFFFF,
            "cmd_failed": lambda: ds.failed & 0xFFFF,
            "tt_queue_depth": lambda: self.sequencer.depth,
            "free_heap": hal.mem_free,
            "loop_worst_us": lambda: self.loop_worst_us,
            "obstacle_mm": lambda: hal.obstacle_mm,
            "sa_arsn": lambda: self.security.highest(lk.last_spi),
            "pose_err_m": lambda: min(nav.err_mm, 65535),
            "vo_fixes": lambda: nav.fixes & 0xFFFF,
            "slip_pct": lambda: (16384 - nav.gr_q14) * 1000 // 16384,
            "gyro_bias_dph": lambda: nav.bias_urad_s * 2063 // 100,
            "pitch_filt_deg": lambda: sf.pitch_f,
            "roll_filt_deg": lambda: sf.roll_f,
            "heater_on": lambda: 1 if self.power.heater_on else 0,
            "wheel1_speed_mph": _wheel_speed(dr.wheel_v16, 0),
            "wheel1_current_a": _item(hal.current_ma, 0),
            "wheel1_state": _item(sf.state, 0),
            "wheel2_speed_mph": _wheel_speed(dr.wheel_v16, 1),
            "wheel2_current_a": _item(hal.current_ma, 1),
            "wheel2_state": _item(sf.state, 1),
            "wheel3_speed_mph": _wheel_speed(dr.wheel_v16, 2),
            "wheel3_current_a": _item(hal.current_ma, 2),
            "wheel3_state": _item(sf.state, 2),
            "wheel4_speed_mph": _wheel_speed(dr.wheel_v16, 3),
            "wheel4_current_a": _item(hal.current_ma, 3),
            "wheel4_state": _item(sf.state, 3),
            "wheel5_speed_mph": _wheel_speed(dr.wheel_v16, 4),
            "wheel5_current_a": _item(hal.current_ma, 4),
            "wheel5_state": _item(sf.state, 4),
            "wheel6_speed_mph": _wheel_speed(dr.wheel_v16, 5),
            "wheel6_current_a": _item(hal.current_ma, 5),
            "wheel6_state": _item(sf.state, 5),
        }
        # one literal: the dict is made at its full size, one block, and never grows (after a
        # reboot the heap is in pieces: growing it needed a second, larger block at once)
        return src


def _item(seq, i):
    return lambda: seq[i]


def _wheel_speed(seq, i):
    return lambda: seq[i] * 9 // 4  # 1/16 mm/s -> 0.1 m/h


async def run_forever(board, hal, root="", link_stream=None, on_boot=None, max_boots=0, dictionary=None):
    # Power supply for the sim: run the rover, restart it after each Reset (root
    # and hal are kept, as flash and hardware are). Returns on EnterRepl, or after
    # max_boots boots when max_boots > 0. on_boot(rover) is called for each boot.
    import gc

    boots = 0
    while True:
        gc.collect()
        if hasattr(hal, "power_good"):
            await hal.power_good()  # a browned-out board waits for its battery
        rover = Rover(board, hal, root, link_stream, dictionary)
        dictionary = rover.dictionary
        boots += 1
        if on_boot is not None:
            on_boot(rover)
        try:
            await rover.run()
        except Reset:
            if max_boots and boots >= max_boots:
                return rover
            # let the cancelled tasks end and drop the old rover before the next boot
            rover = None
            await sleep_ms(0)
            continue
        except EnterRepl:
            return rover


async def _one_boot(board, hal, root, link_stream, dictionary, box):
    if hasattr(hal, "power_good"):
        await hal.power_good()  # a browned-out board waits for its battery
    rover = Rover(board, hal, root, link_stream, dictionary)
    box[0] = rover.dictionary
    box[1] = rover
    await rover.run()


def boot_loop(board, hal, root="", link_stream=None, dictionary=None, max_boots=0):
    # The board entry's power supply (synchronous): one asyncio.run per boot, so
    # nothing of a reset rover survives into the next one (MicroPython's task
    # queue can keep finished tasks reachable while its loop runs). Restarts after
    # each Reset; returns the last rover on EnterRepl or after max_boots boots.
    import gc

    box = [dictionary, None]
    boots = 0
    while True:
        box[1] = None
        gc.collect()
        if hasattr(asyncio, "new_event_loop") and MICROPYTHON:
            asyncio.new_event_loop()
        boots += 1
        try:
            asyncio.run(_one_boot(board, hal, root, link_stream, box[0], box))
        except Reset:
            if max_boots and boots >= max_boots:
                return box[1]
        except EnterRepl:
            return box[1]


def start_background(board, hal, root, link_stream=None, dictionary=None):
    # The rover in a thread (core 1 on a Pico) while the caller goes back to the REPL
    # for mpremote and the flash tool: only for a link of its own, never the REPL's
    # console. `root` must be absolute (main.py may chdir after this returns). The
    # thread ends with the interpreter: a soft reset stops the rover (rp2 resets core
    # 1; the virtual board restarts its process), a hard reset starts it again.
    import _thread
    import sys

    def run():
        try:
            boot_loop(board, hal, root, link_stream, dictionary)
            sys.stderr.write("farside: rover stopped (ENTER_REPL)\n")
        except BaseException as e:  # noqa: BLE001 - the thread's last word, on the console
            if MICROPYTHON:
                sys.print_exception(e)
            else:
                import traceback

                traceback.print_exc()

    if MICROPYTHON:
        _thread.stack_size(_STACK_RP2 if sys.platform == "rp2" else _STACK_UNIX)
    return _thread.start_new_thread(run, ())
