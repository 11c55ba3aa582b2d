# Power: battery state of charge, low-battery SAFE, HIBERNATE and wake.
#
# Once a second: below battery_safe_pct the drive stops and the rover goes SAFE
# (BATTERY_LOW); below battery_hibernate_pct it hibernates (HIBERNATE_ENTER):
# everything but the wake timer off (hal.hibernate(True): in the sim a small
# heater load). In HIBERNATE it wakes (HIBERNATE_WAKE, mode SAFE) when the
# battery is above battery_wake_pct with sun on the panels, or when the wake
# timer set by the HIBERNATE command expires and the battery is above the
# hibernate threshold.
from firmware_py import modes
from firmware_py.compat import const

_P_SAFE = const(6)
_P_HIBERNATE = const(7)
_P_WAKE = const(8)
_EV_BATTERY_LOW = const(11)
_EV_HIB_ENTER = const(12)
_EV_HIB_WAKE = const(13)


class Power:
    def __init__(self, hal, params, modes_, events, drive):
        self.hal = hal
        self.p = params.v
        self.modes = modes_
        self.events = events
        self.drive = drive
        self.wake_after_s = 0
        self.hib_s = 0
        self.low = False

    def hibernate(self, wake_after_s, reason=modes.R_COMMAND):
        self.drive.abort(4)  # MODE
        m = self.modes
        if m.mode != modes.SAFE and m.mode != modes.STANDBY and m.mode != modes.DRIVE:
            return False
        self.wake_after_s = wake_after_s
        self.hib_s = 0
        m.request(modes.HIBERNATE, reason)
        self.hal.hibernate(True)
        self.events.emit(_EV_HIB_ENTER, self.hal.battery_pct, wake_after_s)
        return True

    def wake(self, reason=modes.R_WAKE):
        self.hal.hibernate(False)
        self.events.emit(_EV_HIB_WAKE, self.hal.battery_pct)
        self.modes.request(modes.SAFE, reason)

    def step(self, dt_s):
        pct = self.hal.battery_pct
        p = self.p
        m = self.modes
        if m.mode == modes.HIBERNATE:
            self.hib_s += dt_s
            sun = self.hal.solar_dw > 0
            if (pct >= p[_P_WAKE] and sun) or (
                self.wake_after_s and self.hib_s >= self.wake_after_s and pct > p[_P_HIBERNATE]
            ):
                self.wake()
            return
        if pct < p[_P_SAFE]:
            if not self.low:
                self.low = True
                self.events.emit(_EV_BATTERY_LOW, pct)
                self.drive.abort(5)  # LOW_BATTERY
            if m.mode != modes.SAFE:
                m.request(modes.SAFE, modes.R_LOW_BATTERY)
            if pct < p[_P_HIBERNATE]:
                self.hibernate(0, modes.R_LOW_BATTERY)
        elif pct >= p[_P_SAFE] + 2:
            self.low = False
