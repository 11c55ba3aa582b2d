# Safety: the only component that can enable the motors.
#
# It owns the motor drivers' enable line (hal.motors_enable), the state of each
# wheel (dictionary enum wheel_state) and the hazard checks. Drive asks for
# motion with arm()/disarm() and writes duties through output(), which holds an
# isolated wheel at 0 (coasting) and everything at 0 while disarmed.
#
# Integers only on the per-iteration path (duty Q15, mA, ms, centidegrees): the
# control loop allocates nothing.
#
# Wheel fault detection, per wheel, while it is commanded (|duty| > 0.15):
#   OVERCURRENT   current above the parameter for 250 ms (the drive limits
#                 current to 80 % of it first, so this means a short)
#   OPEN_CIRCUIT  under 30 mA for 500 ms
#   STALL         no encoder motion for stall_timeout_s and current above
#                 twice the side's healthy mean (or above 1 A)
#   ENCODER_FAIL  no encoder motion for stall_timeout_s with normal current
# A faulty wheel is isolated at once and reported (WHEEL_FAULT, WHEEL_ISOLATED).
# Fewer than two working wheels on a side: drive aborts, mode SAFE.
from firmware_py import modes
from firmware_py.compat import const

OK = const(0)
DISABLED = const(1)
STALL = const(2)
OVERCURRENT = const(3)
OPEN_CIRCUIT = const(4)
ENCODER_FAIL = const(5)

EV_WHEEL_FAULT = const(3)
EV_WHEEL_ISOLATED = const(4)
EV_WHEEL_ENABLED = const(5)
EV_HAZARD_TILT = const(9)
EV_HAZARD_OBSTACLE = const(10)

_P_TILT = const(3)
_P_OBSTACLE = const(4)
_P_STALL = const(9)
_P_OVERCURRENT = const(10)

_CMD_DUTY = const(4915)  # 0.15 in Q15
_OC_MS = const(250)
_OPEN_MS = const(500)
_OPEN_MA = const(30)
_STALL_MA = const(1000)
OBSTACLE_STOP_MM = const(1000)  # stop when a tall obstacle is this close


class Safety:
    def __init__(self, hal, params, modes_, events):
        self.hal = hal
        self.p = params.v
        self.modes = modes_
        self.events = events
        self.armed = False
        self.state = [OK] * 6
        self.duty = [0] * 6
        self._oc_ms = [0] * 6
        self._open_ms = [0] * 6
        self._still_ms = [0] * 6
        self._last_enc = [0] * 6
        self.tilt_latched = False
        self.obstacle_latched = False
        self.on_abort = None  # drive.abort(reason)
        self._params = params
        self._pver = -1
        self._oc_ma = 0
        self._stall_ms = 0
        self._tilt_cd = 0
        self._obst_mm = 0

    def _sync(self):
        # integer copies of the parameters, refreshed when they change
        p = self.p
        self._pver = self._params.version
        self._oc_ma = int(p[_P_OVERCURRENT] * 1000)
        self._stall_ms = int(p[_P_STALL] * 1000)
        self._tilt_cd = int(p[_P_TILT] * 100)
        self._obst_mm = int(p[_P_OBSTACLE] * 1000)

    # -- motors --
    def arm(self):
        # True when the motors may run now.
        if self.modes.mode != modes.DRIVE or self.tilt_latched:
            return False
        if not self.armed:
            for i in range(6):
                self._still_ms[i] = 0
                self._last_enc[i] = self.hal.enc[i]
            self.hal.motors_enable(True)
            self.armed = True
        return True

    def disarm(self):
        for i in range(6):
            self.duty[i] = 0
            self.hal.set_motor(i, 0)
        self.hal.motors_enable(False)
        self.armed = False

    def output(self, i, duty):
        if not self.armed or self.state[i] != OK:
            duty = 0
        self.duty[i] = duty
        self.hal.set_motor(i, duty)

    def side_ok(self, side):
        n = 0
        for i in range(side * 3, side * 3 + 3):
            if self.state[i] == OK:
                n += 1
        return n

    def wheels_available(self):
        return self.side_ok(0) >= 2 and self.side_ok(1) >= 2

    def obstacle_ahead(self):
        # A tall obstacle within the stopping distance ahead (what check_hazards
        # stops a forward drive for): a forward drive cannot start.
        if self._pver != self._params.version:
            self._sync()
        hal = self.hal
        return hal.obstacle_mm > self._obst_mm and 0 < hal.obstacle_dist_mm < OBSTACLE_STOP_MM

    # -- ground commands --
    def disable_wheel(self, i):
        if self.state[i] == OK:
            self.state[i] = DISABLED
            self.output(i, 0)
            self.events.emit(EV_WHEEL_ISOLATED, i + 1)

    def enable_wheel(self, i):
        self.state[i] = OK
        self._oc_ms[i] = 0
        self._open_ms[i] = 0
        self._still_ms[i] = 0
        self._last_enc[i] = self.hal.enc[i]
        self.events.emit(EV_WHEEL_ENABLED, i + 1)

    def _fault(self, i, state):
        self.state[i] = state
        self.output(i, 0)
        self.events.emit(EV_WHEEL_FAULT, i + 1, state)
        self.events.emit(EV_WHEEL_ISOLATED, i + 1)
        if self.side_ok(i // 3) < 2:
            self.disarm()
            self.modes.request(modes.SAFE, modes.R_WHEEL_FAULT)
            if self.on_abort is not None:
                self.on_abort(3)  # abort_reason WHEELS

    # -- per control-loop iteration --
    def check_wheels(self, dt_ms):
        hal = self.hal
        if self._pver != self._params.version:
            self._sync()
        oc_ma = self._oc_ma
        stall_ms = self._stall_ms
        for i in range(6):
            enc = hal.enc[i]
            moved = enc != self._last_enc[i]
            self._last_enc[i] = enc
            if self.state[i] != OK:
                continue
            d = self.duty[i]
            if not self.armed or -_CMD_DUTY < d < _CMD_DUTY:
                self._oc_ms[i] = 0
                self._open_ms[i] = 0
                self._still_ms[i] = 0
                continue
            cur = hal.current_ma[i]
            self._oc_ms[i] = self._oc_ms[i] + dt_ms if cur > oc_ma else 0
            self._open_ms[i] = self._open_ms[i] + dt_ms if cur < _OPEN_MA else 0
            self._still_ms[i] = 0 if moved else self._still_ms[i] + dt_ms
            if self._oc_ms[i] >= _OC_MS:
                self._fault(i, OVERCURRENT)
            elif self._open_ms[i] >= _OPEN_MS:
                self._fault(i, OPEN_CIRCUIT)
            elif self._still_ms[i] >= stall_ms:
                ref = self._side_mean_ma(i)
                if cur > _STALL_MA or (ref > 0 and cur > 2 * ref):
                    self._fault(i, STALL)
                else:
                    self._fault(i, ENCODER_FAIL)

    def _side_mean_ma(self, i):
        s = (i // 3) * 3
        n = 0
        tot = 0
        for j in range(s, s + 3):
            if j != i and self.state[j] == OK:
                tot += self.hal.current_ma[j]
                n += 1
        return tot // n if n else 0

    def check_hazards(self, forward):
        # Tilt beyond the limit: SAFE. A tall obstacle close ahead while driving
        # forward: stop. Each is reported once per episode.
        hal = self.hal
        if self._pver != self._params.version:
            self._sync()
        lim = self._tilt_cd
        pitch = hal.pitch_cdeg
        roll = hal.roll_cdeg
        if pitch > lim or pitch < -lim or roll > lim or roll < -lim:
            if not self.tilt_latched:
                self.tilt_latched = True
                self.events.emit(EV_HAZARD_TILT, pitch, roll)
                self.disarm()
                if self.modes.mode != modes.HIBERNATE:
                    self.modes.request(modes.SAFE, modes.R_TILT)
                if self.on_abort is not None:
                    self.on_abort(1)  # TILT
        elif self.tilt_latched and pitch < lim - 200 and pitch > 200 - lim and roll < lim - 200 and roll > 200 - lim:
            self.tilt_latched = False
        h = hal.obstacle_mm
        if forward and h > self._obst_mm and 0 < hal.obstacle_dist_mm < OBSTACLE_STOP_MM:
            if not self.obstacle_latched:
                self.obstacle_latched = True
                self.events.emit(EV_HAZARD_OBSTACLE, h, hal.obstacle_dist_mm)
                if self.on_abort is not None:
                    self.on_abort(2)  # OBSTACLE
            return True
        self.obstacle_latched = False
        return False
