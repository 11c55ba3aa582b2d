# Rover modes and the transitions allowed between them (dictionary enum "mode").
#
#   BOOT -> SAFE | STANDBY
#   SAFE -> STANDBY | HIBERNATE
#   STANDBY -> DRIVE | SAFE | HIBERNATE
#   DRIVE -> STANDBY | SAFE | HIBERNATE
#   HIBERNATE -> SAFE (wake)
# Every transition is reported through `on_change(from, to, reason)` (the app
# turns it into a MODE_CHANGE event). Requests for the current mode succeed
# without an event.
from firmware_py.compat import const

BOOT = const(0)
SAFE = const(1)
STANDBY = const(2)
DRIVE = const(3)
HIBERNATE = const(4)

R_BOOT = const(0)
R_COMMAND = const(1)
R_TILT = const(2)
R_LOW_BATTERY = const(3)
R_LINK_LOSS = const(4)
R_RESETS = const(5)
R_WHEEL_FAULT = const(6)
R_WAKE = const(7)
R_NIGHT = const(8)

NAMES = ("BOOT", "SAFE", "STANDBY", "DRIVE", "HIBERNATE")

# bit mask of allowed targets, indexed by the current mode
_ALLOWED = (
    (1 << SAFE) | (1 << STANDBY),
    (1 << STANDBY) | (1 << HIBERNATE),
    (1 << DRIVE) | (1 << SAFE) | (1 << HIBERNATE),
    (1 << STANDBY) | (1 << SAFE) | (1 << HIBERNATE),
    (1 << SAFE),
)


def allowed(frm, to):
    return 0 <= frm <= HIBERNATE and 0 <= to <= HIBERNATE and bool(_ALLOWED[frm] & (1 << to))


class Modes:
    def __init__(self, on_change=None):
        self.mode = BOOT
        self.reason = R_BOOT
        self.on_change = on_change
        self.transitions = 0

    def can(self, to):
        return to == self.mode or allowed(self.mode, to)

    def request(self, to, reason):
        # True when the rover is now in `to`.
        if to == self.mode:
            return True
        if not allowed(self.mode, to):
            return False
        frm = self.mode
        self.mode = to
        self.reason = reason
        self.transitions += 1
        if self.on_change is not None:
            self.on_change(frm, to, reason)
        return True
