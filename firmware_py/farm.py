# FARM-1: the rover's half of COP-1 (CCSDS 232.1-B-2, Frame Acceptance and
# Reporting Mechanism), for one TC virtual channel.
#
# The link layer parses and authenticates a TC frame, then calls
#     code = farm.on_frame(bypass, control, ns, data_mv)
# and acts on the result code: ACCEPT and ACCEPT_BD deliver the frame's data,
# CONTROL_DONE means a BC directive was executed. Those three (see accepted())
# are the only codes on which the SDLS anti-replay sequence number may be
# committed; everything else is a discard. farm.clcw() is the 32-bit CLCW for
# the OCF of the next TM frame.
#
# States (232.1-B-2 section 6): S1 Open, S2 Wait, S3 Lockout. The window W
# (even, 2..254) splits into a positive window PW = W/2 and a negative window
# NW = W/2 around V(R):
#   N(S) == V(R)                  -> accept (or discard + Wait if no buffer)
#   V(R) < N(S) < V(R)+PW         -> discard, Retransmit flag set
#   V(R)-NW <= N(S) < V(R)        -> discard (a duplicate)
#   anywhere else                 -> Lockout
# No allocation per frame: state lives in small ints.
from firmware_py.compat import const

# result codes of on_frame(); the first three are acceptances
ACCEPT = const(1)  # Type-AD frame in sequence: deliver its data
ACCEPT_BD = const(2)  # Type-BD frame (bypass): deliver its data
CONTROL_DONE = const(3)  # Type-BC directive executed (Unlock / Set V(R))
DISCARD = const(4)  # duplicate (negative window) or discarded in Lockout
DISCARD_RETRANSMIT = const(5)  # gap (positive window) or no buffer: Retransmit set
LOCKOUT_ENTERED = const(6)  # N(S) outside both windows: Lockout entered now
INVALID = const(7)  # bad frame type or unknown/ill-formed control command

STATE_OPEN = const(1)
STATE_WAIT = const(2)
STATE_LOCKOUT = const(3)

_BC_UNLOCK = const(0x00)
_BC_SET_VR = const(0x82)

CODE_NAMES = (
    "",
    "ACCEPT",
    "ACCEPT_BD",
    "CONTROL_DONE",
    "DISCARD",
    "DISCARD_RETRANSMIT",
    "LOCKOUT_ENTERED",
    "INVALID",
)


def accepted(code):
    # True when the frame was accepted (commit the SDLS sequence number)
    return code <= CONTROL_DONE


class Farm:
    def __init__(self, vcid=1, window=64):
        if window < 2 or window > 254 or window & 1:
            raise ValueError("FARM window must be even, 2..254")
        self.vcid = vcid & 0x3F
        self.window = window
        self._pw = window >> 1
        self._nw = window >> 1
        self.reset()

    # power-on state: Open, V(R) = 0, all flags clear
    def reset(self):
        self.vr = 0
        self.state = STATE_OPEN
        self.lockout = 0
        self.wait = 0
        self.retransmit = 0
        self.farm_b = 0
        self.no_rf = 0
        self.no_bit_lock = 0
        self.buffer_full = False
        # counters for housekeeping
        self.accepted_ad = 0
        self.accepted_bd = 0
        self.discarded = 0
        self.lockouts = 0

    # bypass, control: the frame header flags (0/1); ns: N(S) 0..255;
    # data_mv: the frame data field (for BC frames, the control command)
    def on_frame(self, bypass, control, ns, data_mv):
        if bypass:
            if control:
                return self._control(data_mv)
            # E6: Type-BD, accepted in every state
            self.farm_b = (self.farm_b + 1) & 3
            self.accepted_bd += 1
            return ACCEPT_BD
        if control:
            # Type-AD with the control flag is not a valid frame (E10)
            self.discarded += 1
            return INVALID
        return self._ad(ns & 0xFF)

    def _ad(self, ns):
        state = self.state
        d = (ns - self.vr) & 0xFF
        if d == 0:
            if state == STATE_OPEN:
                if self.buffer_full:
                    # E2: no buffer: discard, Retransmit + Wait, go to S2
                    self.retransmit = 1
                    self.wait = 1
                    self.state = STATE_WAIT
                    self.discarded += 1
                    return DISCARD_RETRANSMIT
                # E1: accept
                self.vr = (self.vr + 1) & 0xFF
                self.retransmit = 0
                self.accepted_ad += 1
                return ACCEPT
            self.discarded += 1
            if state == STATE_WAIT:
                return DISCARD_RETRANSMIT
            return DISCARD
        if d < self._pw:
            # E3: positive window: a frame went missing
            self.discarded += 1
            if state == STATE_OPEN:
                self.retransmit = 1
                return DISCARD_RETRANSMIT
            if state == STATE_WAIT:
                return DISCARD_RETRANSMIT
            return DISCARD
        if 256 - d <= self._nw:
            # E4: negative window: already accepted, discard
            self.discarded += 1
            return DISCARD
        # E5: lockout area
        self.discarded += 1
        if state == STATE_LOCKOUT:
            return DISCARD
        self.lockout = 1
        self.state = STATE_LOCKOUT
        self.lockouts += 1
        return LOCKOUT_ENTERED

    def _control(self, data_mv):
        n = len(data_mv)
        if n == 1 and data_mv[0] == _BC_UNLOCK:
            # E7: Unlock, in every state back to Open
            self.farm_b = (self.farm_b + 1) & 3
            self.retransmit = 0
            self.wait = 0
            self.lockout = 0
            self.state = STATE_OPEN
            return CONTROL_DONE
        if n == 3 and data_mv[0] == _BC_SET_VR and data_mv[1] == 0:
            # E8: Set V(R); ignored (but counted) in Lockout
            self.farm_b = (self.farm_b + 1) & 3
            if self.state != STATE_LOCKOUT:
                self.retransmit = 0
                self.wait = 0
                self.state = STATE_OPEN
                self.vr = data_mv[2]
            return CONTROL_DONE
        self.discarded += 1
        return INVALID

    # the receiving buffer is full (True) or has room again (False); when
    # it frees up in Wait, the FARM returns to Open (E9)
    def set_buffer_full(self, full):
        self.buffer_full = full
        if not full and self.state == STATE_WAIT:
            self.wait = 0
            self.state = STATE_OPEN

    # the CLCW as an int (fits a MicroPython small int: the type bit is 0)
    def clcw(self):
        return (
            (1 << 24)
            | (self.vcid << 18)
            | (self.no_rf << 15)
            | (self.no_bit_lock << 14)
            | (self.lockout << 13)
            | (self.wait << 12)
            | (self.retransmit << 11)
            | (self.farm_b << 9)
            | self.vr
        )

    # write the CLCW into buf[off:off+4] (the OCF) without allocating
    def clcw_into(self, buf, off):
        buf[off] = 0x01
        buf[off + 1] = self.vcid << 2
        buf[off + 2] = (
            (self.no_rf << 7)
            | (self.no_bit_lock << 6)
            | (self.lockout << 5)
            | (self.wait << 4)
            | (self.retransmit << 3)
            | (self.farm_b << 1)
        )
        buf[off + 3] = self.vr
