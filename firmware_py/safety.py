# Safety: the only component that can enable the motors.
#
# It owns the motor drivers' enable line (hal.motors_enable), the state of each
# wheel (dictionary enum wheel_state) and the hazard checks. Drive asks for
# motion with arm()/disarm() and writes duties through output(), which holds an
# isolated wheel at 0 (coasting) and everything at 0 while disarmed.
#
# Integers only on the per-iteration path (duty Q15, mA, ms, centidegrees, mm):
# the control loop allocates nothing.
#
# Wheel fault detection, per wheel, while it is commanded (|duty| > 0.15):
#   OVERCURRENT   current above the parameter for 250 ms (the drive limits
#                 current to 80 % of it first, so this means a short)
#   OPEN_CIRCUIT  under 30 mA for 500 ms
#   STALL         no encoder motion for stall_timeout_s and current above
#                 twice the side's healthy mean (or above 1 A)
#   ENCODER_FAIL  no encoder motion for stall_timeout_s with normal current
# A faulty wheel is isolated at once and reported (WHEEL_FAULT, WHEEL_ISOLATED),
# except ENCODER_FAIL: its motor works, so it stays in service and drives open
# loop (WHEEL_FAULT only; over-current is still watched).
# Wheel policy: a side needs two working wheels (OK or ENCODER_FAIL; the plant's
# physics gives a side on one wheel a fraction of its force). A fault or a
# commanded WHEEL_DISABLE that leaves a side with fewer while driving aborts the
# drive (WHEELS) and goes SAFE (WHEEL_FAULT).
#
# Tilt: pitch and roll are low-pass filtered (first order, time constant
# tilt_filter_s) and compared with tilt_limit_deg + tilt_margin_deg (20 + 3 by
# default: the rated 20 deg climbs, a sustained 23 deg goes SAFE), so a noisy
# sample or a rock's bump does not trip it.
# Obstacles: each rock the hazard camera reports (hal.haz_*) taller than
# obstacle_limit_m (the climb limit) whose near edge is inside the swept corridor
# (half of track + wheel width, plus hazard_margin_m, each side of the centre
# line) and closer than OBSTACLE_STOP_MM stops a forward drive
# (HAZARD_OBSTACLE); smaller rocks are driven over. A HAL without the camera
# gives the old single reading (obstacle_mm, obstacle_dist_mm).
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
_P_TILT_MARGIN = const(30)
_P_TILT_FILTER = const(31)
_P_HAZ_MARGIN = const(32)

_CMD_DUTY = const(4915)  # 0.15 in Q15
_OC_MS = const(250)
_OPEN_MS = const(500)
_OPEN_MA = const(30)
_STALL_MA = const(1000)
OBSTACLE_STOP_MM = const(1000)  # stop when a tall obstacle is this close


class Safety:
    def __init__(self, hal, params, modes_, events, board=None):
        geo = (board or {}).get("geometry", {})
        self._half_swept_mm = int((geo.get("track_m", 1.0) + geo.get("wheel_width_m", 0.15)) * 500)
        self._hazcam = hasattr(hal, "haz_n")
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
        self._tau_ms = 1000
        self._corr_mm = 0
        self.pitch_f = 0  # filtered attitude, cdeg
        self.roll_f = 0
        self._att_ok = False
        self.obst_h_mm = 0  # the obstacle that stops a drive (0: none)
        self.obst_d_mm = 0

    def _sync(self):
        # integer copies of the parameters, refreshed when they change
        p = self.p
        self._pver = self._params.version
        self._oc_ma = int(p[_P_OVERCURRENT] * 1000)
        self._stall_ms = int(p[_P_STALL] * 1000)
        self._tilt_cd = int((p[_P_TILT] + p[_P_TILT_MARGIN]) * 100)
        self._obst_mm = int(p[_P_OBSTACLE] * 1000)
        self._tau_ms = max(1, int(p[_P_TILT_FILTER] * 1000))
        self._corr_mm = self._half_swept_mm + int(p[_P_HAZ_MARGIN] * 1000)

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
        s = self.state[i]
        if not self.armed or (s != OK and s != ENCODER_FAIL):
            duty = 0
        self.duty[i] = duty
        self.hal.set_motor(i, duty)

    def side_ok(self, side):
        n = 0
        for i in range(side * 3, side * 3 + 3):
            s = self.state[i]
            if s == OK or s == ENCODER_FAIL:
                n += 1
        return n

    def wheels_available(self):
        return self.side_ok(0) >= 2 and self.side_ok(1) >= 2

    def obstacle_ahead(self):
        # A tall obstacle within the stopping distance ahead (what check_hazards
        # stops a forward drive for): a forward drive cannot start.
        if self._pver != self._params.version:
            self._sync()
        return self._obstacle()

    def _obstacle(self):
        # True when a rock too tall to climb is in the corridor within the stopping
        # distance; obst_h_mm/obst_d_mm name the nearest such rock.
        hal = self.hal
        self.obst_h_mm = 0
        self.obst_d_mm = 0
        if not self._hazcam:
            if hal.obstacle_mm > self._obst_mm and 0 < hal.obstacle_dist_mm < OBSTACLE_STOP_MM:
                self.obst_h_mm = hal.obstacle_mm
                self.obst_d_mm = hal.obstacle_dist_mm
                return True
            return False
        hh = hal.haz_h_mm
        hd = hal.haz_d_mm
        hl = hal.haz_lat_mm
        hw = hal.haz_w_mm
        for k in range(hal.haz_n):
            d = hd[k]
            if hh[k] <= self._obst_mm or d <= 0 or d >= OBSTACLE_STOP_MM:
                continue
            lat = hl[k] if hl[k] >= 0 else -hl[k]
            if lat - (hw[k] >> 1) < self._corr_mm:
                self.obst_h_mm = hh[k]
                self.obst_d_mm = d
                return True
        return False

    # -- ground commands --
    def disable_wheel(self, i):
        if self.state[i] != DISABLED:
            self.state[i] = DISABLED
            self.output(i, 0)
            self.events.emit(EV_WHEEL_ISOLATED, i + 1)
            self._policy(i)

    def _policy(self, i):
        # the two-wheels-per-side rule after wheel i left service
        if self.side_ok(i // 3) < 2 and self.armed:
            self.disarm()
            self.modes.request(modes.SAFE, modes.R_WHEEL_FAULT)
            if self.on_abort is not None:
                self.on_abort(3)  # abort_reason WHEELS

    def enable_wheel(self, i):
        self.state[i] = OK
        self._oc_ms[i] = 0
        self._open_ms[i] = 0
        self._still_ms[i] = 0
        self._last_enc[i] = self.hal.enc[i]
        self.events.emit(EV_WHEEL_ENABLED, i + 1)

    def _fault(self, i, state):
        self.state[i] = state
        self.events.emit(EV_WHEEL_FAULT, i + 1, state)
        if state == ENCODER_FAIL:
            return  # the motor still drives, open loop
        self.output(i, 0)
        self.events.emit(EV_WHEEL_ISOLATED, i + 1)
        self._policy(i)

    # -- per control-loop iteration --
    def check_wheels(self, dt_ms):
        hal = self.hal
        if self._pver != self._params.version:
            self._sync()
        oc_ma = self._oc_ma
        stall_ms = self._stall_ms
        hal_enc = hal.enc
        hal_cur = hal.current_ma
        last = self._last_enc
        state = self.state
        duty = self.duty
        oc = self._oc_ms
        op = self._open_ms
        still = self._still_ms
        for i in range(6):
            enc = hal_enc[i]
            moved = enc != last[i]
            last[i] = enc
            s = state[i]
            if s != OK and s != ENCODER_FAIL:
                continue
            d = duty[i]
            if not self.armed or -_CMD_DUTY < d < _CMD_DUTY:
                oc[i] = 0
                op[i] = 0
                still[i] = 0
                continue
            cur = hal_cur[i]
            o = oc[i] + dt_ms if cur > oc_ma else 0
            oc[i] = o
            p = op[i] + dt_ms if cur < _OPEN_MA else 0
            op[i] = p
            t = 0 if moved else still[i] + dt_ms
            still[i] = t
            if o >= _OC_MS:
                self._fault(i, OVERCURRENT)
            elif s == ENCODER_FAIL:
                continue
            elif p >= _OPEN_MS:
                self._fault(i, OPEN_CIRCUIT)
            elif t >= stall_ms:
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

    def check_hazards(self, forward, dt_ms=0):
        # Filtered tilt beyond the limit: SAFE. A rock too tall to climb in the
        # corridor close ahead while driving forward: stop. Each is reported once
        # per episode.
        hal = self.hal
        if self._pver != self._params.version:
            self._sync()
        if not self._att_ok:
            self.pitch_f = hal.pitch_cdeg
            self.roll_f = hal.roll_cdeg
            self._att_ok = True
        else:
            tau = self._tau_ms
            k = dt_ms if dt_ms < tau else tau
            self.pitch_f += (hal.pitch_cdeg - self.pitch_f) * k // tau
            self.roll_f += (hal.roll_cdeg - self.roll_f) * k // tau
        lim = self._tilt_cd
        pitch = self.pitch_f
        roll = self.roll_f
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
        if forward and self._obstacle():
            if not self.obstacle_latched:
                self.obstacle_latched = True
                self.events.emit(EV_HAZARD_OBSTACLE, self.obst_h_mm, self.obst_d_mm)
                if self.on_abort is not None:
                    self.on_abort(2)  # OBSTACLE
            return True
        self.obstacle_latched = False
        return False
