# Dispatcher: PUS TC packets -> checks -> handlers, with service 1 verification.
#
# For every TC packet: parse (CRC, length), find the command by service and
# subservice in the dictionary, check the argument length, enums and ranges
# (firmware_py.dictionary), then the command's own acceptance check (mode,
# parameter id, queue space, wheel availability...). A failure at any of these
# is TM 1/2 (rejected) with the failure code, and nothing else changes.
# Otherwise TM 1/1 (accepted). Commands with a start condition (the drives:
# healthy wheels, no hazard, a mode the drive can run in) check it next: when it
# fails, TM 1/4 (start failed) with the failure code ends the command. Else TM
# 1/3 (started), the handler runs, and TM 1/7 (completed) or 1/8 (completion
# failed) follows, at once or when the motion ends (drive commands). A drive
# stopped after it started (wheel fault, hazard, STOP) is 1/8. One drive at a time: a
# drive command while one runs is rejected, 1/2 BUSY (STOP the first, or wait for its
# 1/7). TM_RETRIEVE completes once the packet store has sent its range
# (firmware_py.pktstore); a second one while one runs is 1/2 BUSY. Success reports honour the packet's ack flags (acceptance 1, start 2,
# completion 8); failure reports are always sent.
# Report data: packet id u16, sequence control u16 (+ failure code u16).
import struct

from firmware_py import drive as drv
from firmware_py import modes
from firmware_py.compat import const
from firmware_py.spacepacket import PKT_BAD_CRC, PKT_BAD_LENGTH, PKT_OK, TcPacket

F_UNKNOWN_COMMAND = const(1)
F_BAD_LENGTH = const(2)
F_OUT_OF_RANGE = const(3)
F_WRONG_MODE = const(4)
F_BAD_CRC = const(5)
F_BUSY = const(6)
F_EXECUTION_FAILED = const(7)
F_QUEUE_FULL = const(8)
F_UNKNOWN_PARAMETER = const(9)
F_WHEEL_UNAVAILABLE = const(10)
F_UNSUPPORTED = const(13)

PENDING = const(-1)

_ACK_ACCEPT = const(1)
_ACK_START = const(2)
_ACK_DONE = const(8)

_DRIVING_MODES = (1 << modes.STANDBY) | (1 << modes.DRIVE)
_NOT_HIBERNATE = (1 << modes.SAFE) | (1 << modes.STANDBY) | (1 << modes.DRIVE) | (1 << modes.BOOT)
_ANY = const(0x1F)

# name -> modes in which the command is accepted (bit mask)
_MODES = {
    "DRIVE_DISTANCE": _DRIVING_MODES,
    "TURN": _DRIVING_MODES,
    "DRIVE_ARC": _DRIVING_MODES,
    "WHEEL_DISABLE": _NOT_HIBERNATE,
    "WHEEL_ENABLE": _NOT_HIBERNATE,
}


class Dispatcher:
    def __init__(self, rover, dictionary, send_data, data_mv):
        self.r = rover
        self.dict = dictionary
        self._send = send_data
        self._data = data_mv
        self.pkt = TcPacket()
        self.accepted = 0
        self.rejected = 0
        self.completed = 0
        self.failed = 0
        self.last = None  # (name, code) of the last command, for tests and HK
        self._h = {}
        # name -> start check (args) -> failure code, run between 1/1 and 1/3
        self._start = {
            "DRIVE_DISTANCE": self._s_drive_distance,
            "TURN": self._s_turn,
            "DRIVE_ARC": self._s_drive_arc,
        }
        for name in (
            "PING", "TIME_SET", "TIME_ADJUST", "HK_SET_PERIOD", "HK_REPORT_NOW",
            "EVENT_DUMP", "PARAM_GET", "PARAM_SET", "TT_INSERT", "TT_CLEAR", "MODE_SET",
            "DRIVE_DISTANCE", "TURN", "DRIVE_ARC", "STOP", "WHEEL_DISABLE", "WHEEL_ENABLE",
            "HIBERNATE", "REBOOT", "ENTER_REPL", "SIM_INJECT", "KEY_OTAR", "SA_REKEY",
            "TM_RETRIEVE",
        ):
            self._h[name] = getattr(self, "_c_" + name.lower())

    # -- service 1 reports --
    def _report(self, sub, pid, psc, code=-1):
        d = self._data
        struct.pack_into(">HH", d, 0, pid, psc)
        n = 4
        if code >= 0:
            struct.pack_into(">H", d, 4, code)
            n = 6
        self._send(1, sub, n)

    def _reject(self, pid, psc, code, name):
        self.rejected += 1
        self.last = (name, code)
        self._report(2, pid, psc, code)

    def start_failed(self, token, code):
        # The command was accepted but could not start: TM 1/4 with the code.
        self.failed += 1
        self._report(4, token[0], token[1], code)

    def done(self, token, code):
        # Completion of a command that ran on (drive); token = (pid, psc, ack).
        pid, psc, ack = token
        if code:
            self.failed += 1
            self._report(8, pid, psc, code)
        else:
            self.completed += 1
            if ack & _ACK_DONE:
                self._report(7, pid, psc)

    # -- entry point --
    def on_packet(self, buf, start, end):
        p = self.pkt
        rc = p.parse(buf, start, end)
        if rc != PKT_OK:
            if rc == PKT_BAD_CRC or rc == PKT_BAD_LENGTH:
                self._reject(p.packet_id, p.seq_ctrl, rc, None)
            else:
                self.rejected += 1
            return rc
        pid = p.packet_id
        psc = p.seq_ctrl
        entry = self.dict.command(p.service, p.subservice)
        if entry is None:
            self._reject(pid, psc, F_UNKNOWN_COMMAND, None)
            return F_UNKNOWN_COMMAND
        name = entry[0]
        code, args = self.dict.check(entry, buf, p.data_start, p.data_end)
        if code:
            self._reject(pid, psc, code, name)
            return code
        mask = _MODES.get(name, _ANY)
        if not mask & (1 << self.r.modes.mode):
            self._reject(pid, psc, F_WRONG_MODE, name)
            return F_WRONG_MODE
        h = self._h[name]
        code = h(args, None, buf, p.data_start + entry[2], p.data_end)
        if code:
            self._reject(pid, psc, code, name)
            return code
        self.accepted += 1
        ack = p.ack
        if ack & _ACK_ACCEPT:
            self._report(1, pid, psc)
        token = (pid, psc, ack)
        check = self._start.get(name)
        if check is not None:
            code = check(args)
            if code:
                self.last = (name, code)
                self.start_failed(token, code)
                return 0
        if ack & _ACK_START:
            self._report(3, pid, psc)
        code = h(args, token, buf, p.data_start + entry[2], p.data_end)
        self.last = (name, code)
        if code == PENDING:
            return 0
        self.done(token, code)
        return 0

    # Each handler is called twice: with token None to check acceptance (return a
    # failure code, change nothing), then with the token to execute (return 0,
    # a failure code, or PENDING when done() will be called later).

    def _c_ping(self, a, t, b, s, e):
        if t is not None:
            self._send(17, 2, 0)
        return 0

    def _c_time_set(self, a, t, b, s, e):
        if t is not None:
            self.r.set_time(a[0], 0)
        return 0

    def _c_time_adjust(self, a, t, b, s, e):
        if t is not None:
            self.r.adjust_time(a[0])
        return 0

    def _c_hk_set_period(self, a, t, b, s, e):
        if t is not None:
            self.r.telemetry.period_ms = int(a[1] * 1000)
        return 0

    def _c_hk_report_now(self, a, t, b, s, e):
        if t is not None:
            self.r.telemetry.send()
        return 0

    def _c_event_dump(self, a, t, b, s, e):
        if t is not None:
            self.r.events.dump()
        return 0

    def _c_tm_retrieve(self, a, t, b, s, e):
        # packet store: the range goes out on the store's channel, then done() (1/7)
        st = self.r.store
        if t is None:
            return F_BUSY if st.active else 0
        st.request(a[1], a[2], t)
        return PENDING

    def _c_param_get(self, a, t, b, s, e):
        pr = self.r.params
        if pr.check(a[0], pr.v[a[0]] if a[0] < len(pr.v) else 0.0) == F_UNKNOWN_PARAMETER:
            return F_UNKNOWN_PARAMETER
        if t is not None:
            struct.pack_into(">Hf", self._data, 0, a[0], pr.v[a[0]])
            self._send(20, 2, 6)
        return 0

    def _c_param_set(self, a, t, b, s, e):
        pr = self.r.params
        code = pr.check(a[0], a[1])
        if code or t is None:
            return code
        code = pr.set(a[0], a[1])
        if code == 0:
            self.r.events.emit(17, a[0], a[1])
        return code

    def _c_tt_insert(self, a, t, b, s, e):
        q = self.r.sequencer
        if q.full():
            return F_QUEUE_FULL
        inner = TcPacket()
        if inner.parse(b, s, e) != PKT_OK or inner.end != e:
            return F_BAD_LENGTH
        if t is not None:
            q.insert(a[0], b[s:e])
        return 0

    def _c_tt_clear(self, a, t, b, s, e):
        if t is not None:
            self.r.sequencer.clear()
        return 0

    def _c_mode_set(self, a, t, b, s, e):
        m = self.r.modes
        to = a[0]
        if not m.can(to):
            return F_WRONG_MODE
        if to == modes.DRIVE and not self.r.safety.wheels_available():
            return F_WHEEL_UNAVAILABLE
        if t is not None:
            if to == modes.HIBERNATE:
                self.r.power.hibernate(0)
            else:
                if to != modes.DRIVE:
                    self.r.drive.abort(drv.AB_MODE)
                if m.mode == modes.HIBERNATE:
                    self.r.power.wake(modes.R_COMMAND)
                else:
                    m.request(to, modes.R_COMMAND)
        return 0

    def _drive(self, t, kind, target, speed, radius):
        # acceptance: the mode (checked before) and no drive running (a second drive
        # is rejected with BUSY, TM 1/2: STOP the first or wait for its 1/7); the
        # start conditions are the start check's (_s_*), reported as 1/4
        if t is None:
            return F_BUSY if self.r.drive.kind != drv.NONE else 0
        code = self.r.drive.start(kind, target, speed, radius, t)
        return code if code else PENDING

    def _s_drive_distance(self, a):
        return self.r.drive.can_start(drv.DISTANCE, a[0])

    def _s_turn(self, a):
        return self.r.drive.can_start(drv.TURN, a[0])

    def _s_drive_arc(self, a):
        return self.r.drive.can_start(drv.ARC, a[1])

    def _c_drive_distance(self, a, t, b, s, e):
        return self._drive(t, drv.DISTANCE, a[0], a[1], 0.0)

    def _c_turn(self, a, t, b, s, e):
        import math

        return self._drive(t, drv.TURN, math.radians(a[0]), self.r.params.v[1], 0.0)

    def _c_drive_arc(self, a, t, b, s, e):
        if a[0] == 0:
            return F_OUT_OF_RANGE
        return self._drive(t, drv.ARC, a[1], a[2], a[0])

    def _c_stop(self, a, t, b, s, e):
        if t is not None:
            self.r.drive.stop()
        return 0

    def _c_wheel_disable(self, a, t, b, s, e):
        if t is not None:
            self.r.safety.disable_wheel(a[0] - 1)
        return 0

    def _c_wheel_enable(self, a, t, b, s, e):
        if t is not None:
            self.r.safety.enable_wheel(a[0] - 1)
        return 0

    def _c_hibernate(self, a, t, b, s, e):
        if not self.r.modes.can(modes.HIBERNATE):
            return F_WRONG_MODE
        if t is not None:
            self.r.power.hibernate(a[0])
        return 0

    def _c_reboot(self, a, t, b, s, e):
        if t is not None:
            self.r.request_reboot()
        return 0

    def _c_enter_repl(self, a, t, b, s, e):
        if t is not None:
            self.r.request_repl()
        return 0

    # Key commands (service 201): like ENTER_REPL and REBOOT they arrive only in frames
    # whose sequence number is above the persisted mark and never seen (firmware_py.sdls).
    def _c_key_otar(self, a, t, b, s, e):
        from firmware_py import otar

        code = otar.load(self.r.security, a[0], a[1], a[2], a[3], t is not None)
        if code == 0 and t is not None:
            self.r.events.emit(31, a[0])  # KEY_LOADED
        return code

    def _c_sa_rekey(self, a, t, b, s, e):
        from firmware_py import otar

        if t is None:
            return otar.rekey_check(self.r.security, a[0], a[1])
        return otar.rekey(self.r.security, a[0], a[1])  # the link switches once the report is sent

    def _c_sim_inject(self, a, t, b, s, e):
        hal = self.r.hal
        if not hasattr(hal, "inject"):
            return F_UNSUPPORTED
        if a[0] in (1, 2, 3) and not 1 <= a[1] <= 6:
            return F_OUT_OF_RANGE
        if t is not None:
            if not hal.inject(a[0], a[1], a[2]):
                return F_EXECUTION_FAILED
            self.r.events.emit(22, a[0], a[1])
        return 0
