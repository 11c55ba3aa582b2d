# Power and thermal: battery, survival heaters, the lunar night, HIBERNATE and wake.
#
# step(dt_s) runs once a second (once a minute while hibernating):
#   - survival heaters: a thermostat on the board temperature (hal.heater(on)):
#     on below heater_on_c, off above heater_off_c;
#   - low battery: below battery_safe_pct the drive stops and the rover goes SAFE
#     (BATTERY_LOW); below battery_hibernate_pct it hibernates (LOW_BATTERY);
#   - dusk: the array input below night_solar_w for night_confirm_s hibernates
#     with the mode-change reason NIGHT (the 14-day lunar night: everything but
#     the heaters, the thermostat and the wake check is off, hal.hibernate(True));
#   - in HIBERNATE, wake (HIBERNATE_WAKE, mode SAFE):
#       sunrise: the array input above wake_solar_w for wake_confirm_s with the
#       battery at battery_wake_pct or more (a NIGHT or LOW_BATTERY hibernation);
#       or the wake timer set by the HIBERNATE command expired with the battery
#       above battery_hibernate_pct.
# A battery truly empty browns the board out (the plant's doing); the rover
# boots with reset cause BROWN_OUT when the array has recharged it.
from firmware_py import modes
from firmware_py.compat import const

_P_SAFE = const(6)
_P_HIBERNATE = const(7)
_P_WAKE = const(8)
_P_HEAT_ON = const(34)
_P_HEAT_OFF = const(35)
_P_NIGHT_W = const(36)
_P_NIGHT_S = const(37)
_P_WAKE_W = const(38)
_P_WAKE_S = const(39)
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
        self.heater_on = False
        self.dark_s = 0  # array input low for this long
        self.sun_s = 0  # array input high for this long
        self._heater = getattr(hal, "heater", None)

    def hibernate(self, wake_after_s, reason=modes.R_COMMAND):
        self.drive.abort(4)  # MODE
        m = self.modes
        if m.mode != modes.SAFE and m.mode != modes.STANDBY and m.mode != modes.DRIVE:
            return False
        self.wake_after_s = wake_after_s
        self.hib_s = 0
        self.sun_s = 0
        m.request(modes.HIBERNATE, reason)
        self.hal.hibernate(True)
        self.events.emit(_EV_HIB_ENTER, self.hal.battery_pct, wake_after_s)
        return True

    def wake(self, reason=modes.R_WAKE):
        self.hal.hibernate(False)
        self.dark_s = 0
        self.events.emit(_EV_HIB_WAKE, self.hal.battery_pct)
        self.modes.request(modes.SAFE, reason)

    def thermostat(self):
        p = self.p
        t = self.hal.temp_board_cc
        on = self.heater_on
        if not on and t < p[_P_HEAT_ON] * 100:
            on = True
        elif on and t > p[_P_HEAT_OFF] * 100:
            on = False
        if on != self.heater_on:
            self.heater_on = on
            if self._heater is not None:
                self._heater(on)

    def step(self, dt_s):
        hal = self.hal
        pct = hal.battery_pct
        p = self.p
        m = self.modes
        self.thermostat()
        solar = hal.solar_dw
        if solar < p[_P_NIGHT_W] * 10:
            self.dark_s += dt_s
        else:
            self.dark_s = 0
        if solar > p[_P_WAKE_W] * 10:
            self.sun_s += dt_s
        else:
            self.sun_s = 0
        if m.mode == modes.HIBERNATE:
            self.hib_s += dt_s
            if (pct >= p[_P_WAKE] and self.sun_s >= p[_P_WAKE_S]) or (
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
                return
        elif pct >= p[_P_SAFE] + 2:
            self.low = False
        if self.dark_s >= p[_P_NIGHT_S] and m.mode != modes.BOOT:
            self.hibernate(0, modes.R_NIGHT)
