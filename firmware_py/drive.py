# Drive: odometry, motion profiles and closed-loop wheel speed for six wheels.
#
# Skid steering: wheels 0-2 left, 3-5 right. A motion (distance, turn, arc) is
# a body speed v (m/s) and yaw rate w (rad/s) each control period: v follows a
# trapezoidal profile (the speed governor max_speed_mph, the acceleration limit
# accel_mph_s, a square-root ramp down to the target), w holds the heading
# (IMU gyro integrated) on the commanded path. Side speeds v -/+ w*track/2 are
# wheel speed targets; each working wheel runs a PI loop with feed-forward and
# a current limit, so when a wheel is isolated the others on its side take its
# share and the heading loop holds the path.
#
# Odometry: per side, the mean encoder travel of that side's working wheels
# (any wheel with a live encoder if none); heading from the gyro.
import math

from firmware_py import modes
from firmware_py.compat import const
from firmware_py.safety import ENCODER_FAIL, OK

NONE = const(0)
DISTANCE = const(1)
TURN = const(2)
ARC = const(3)

AB_COMMAND = const(0)
AB_TILT = const(1)
AB_OBSTACLE = const(2)
AB_WHEELS = const(3)
AB_MODE = const(4)
AB_LOW_BATTERY = const(5)
AB_TIMEOUT = const(6)

EV_DRIVE_STARTED = const(6)
EV_DRIVE_COMPLETED = const(7)
EV_DRIVE_ABORTED = const(8)

_P_MAX_SPEED = const(1)
_P_ACCEL = const(2)
_P_TOL = const(12)

_MPH = 1.0 / 3600.0  # m/h -> m/s
_KP = 6.0
_KI = 20.0
_K_HEADING = 0.8
_W_MAX = 0.12  # rad/s
_V_MIN = 0.004  # m/s, creep speed at the end of a ramp
_DONE_M = 0.002
_DONE_RAD = 0.005
_I_LIMIT_FRAC = 0.8
_TWO_PI = 2.0 * math.pi


def wrap(a):
    while a > math.pi:
        a -= _TWO_PI
    while a < -math.pi:
        a += _TWO_PI
    return a


class Drive:
    def __init__(self, board, hal, params, modes_, safety, events):
        geo = board.get("geometry", {})
        self.track = geo.get("track_m", 1.0)
        self.v_free = geo.get("wheel_free_speed_mps", 0.1)
        self.cpm = board.get("encoders", {}).get("counts_per_m", 5000)
        self.hal = hal
        self.p = params.v
        self.modes = modes_
        self.safety = safety
        self.events = events
        safety.on_abort = self.abort
        # odometry
        self.x = 0.0
        self.y = 0.0
        self.heading = 0.0
        self.odometer = 0.0
        self.v = 0.0  # measured body speed, m/s
        self.wheel_v = [0.0] * 6
        self._enc = [0] * 6
        self._enc_ok = False
        # motion
        self.kind = NONE
        self.target = 0.0  # m or rad
        self.progress = 0.0  # signed m along the path, or rad turned
        self.speed_max = 0.0
        self.radius = 0.0
        self.h0 = 0.0
        self.v_cmd = 0.0
        self.w_cmd = 0.0
        self._integ = [0.0] * 6
        self._cap = [1.0] * 6
        self.token = None
        self.on_done = None  # on_done(token, failure_code); 0 is success

    # -- commands --
    def start(self, kind, target, speed_mph, radius, token):
        # Begin a motion; returns a failure code (0 when started).
        if not self.safety.wheels_available():
            return 10  # WHEEL_UNAVAILABLE
        if self.modes.mode == modes.STANDBY:
            self.modes.request(modes.DRIVE, modes.R_COMMAND)
        if self.modes.mode != modes.DRIVE or not self.safety.arm():
            return 4  # WRONG_MODE
        if self.kind != NONE:
            self._finish(14, AB_COMMAND)  # ABORTED by a newer command
            self.safety.arm()
        lim = self.p[_P_MAX_SPEED]
        if speed_mph > lim:
            speed_mph = lim
        self.kind = kind
        self.target = target
        self.speed_max = speed_mph * _MPH
        self.radius = radius
        self.progress = 0.0
        self.h0 = self.heading
        self.token = token
        for i in range(6):
            self._integ[i] = 0.0
        tmm = int(target * 1000) if kind != TURN else int(math.degrees(target) * 100)
        self.events.emit(EV_DRIVE_STARTED, kind, tmm)
        return 0

    def stop(self):
        if self.kind != NONE:
            self.abort(AB_COMMAND)

    def abort(self, reason):
        if self.kind != NONE:
            self._finish(11 if reason in (AB_TILT, AB_OBSTACLE) else 10 if reason == AB_WHEELS else 14, reason)

    def _finish(self, code, reason):
        kind = self.kind
        self.kind = NONE
        self.v_cmd = 0.0
        self.w_cmd = 0.0
        self.safety.disarm()
        trav = self.progress if kind != TURN else 0.0
        if code == 0:
            self.events.emit(EV_DRIVE_COMPLETED, kind, int(trav * 1000), self.heading_cdeg())
        else:
            self.events.emit(EV_DRIVE_ABORTED, reason, int(trav * 1000))
        if self.modes.mode == modes.DRIVE:
            self.modes.request(modes.STANDBY, modes.R_COMMAND)
        tok = self.token
        self.token = None
        if self.on_done is not None and tok is not None:
            self.on_done(tok, code)

    def heading_cdeg(self):
        return int(math.degrees(wrap(self.heading)) * 100)

    # -- control loop --
    def odometry(self, dt):
        enc = self.hal.enc
        st = self.safety.state
        inv = 1.0 / self.cpm
        if not self._enc_ok:
            for i in range(6):
                self._enc[i] = enc[i]
            self._enc_ok = True
        dl = 0.0
        dr = 0.0
        nl = 0
        nr = 0
        al = 0.0
        ar = 0.0
        bl = 0
        br = 0
        for i in range(6):
            d = (enc[i] - self._enc[i]) * inv
            self._enc[i] = enc[i]
            if dt > 0:
                self.wheel_v[i] += (d / dt - self.wheel_v[i]) * 0.3
            s = st[i]
            if i < 3:
                if s == OK:
                    dl += d
                    nl += 1
                elif s != ENCODER_FAIL:
                    al += d
                    bl += 1
            elif s == OK:
                dr += d
                nr += 1
            elif s != ENCODER_FAIL:
                ar += d
                br += 1
        dl = dl / nl if nl else (al / bl if bl else 0.0)
        dr = dr / nr if nr else (ar / br if br else 0.0)
        ds = (dl + dr) * 0.5
        dh = self.hal.yaw_rate_rps * dt
        h = self.heading + dh * 0.5
        self.x += ds * math.cos(h)
        self.y += ds * math.sin(h)
        self.heading += dh
        self.odometer += abs(ds)
        if dt > 0:
            self.v += (ds / dt - self.v) * 0.3
        if self.kind == TURN:
            self.progress += dh
        else:
            self.progress += ds

    def step(self, dt):
        # One control period of dt seconds: odometry, hazards, profile, wheel loops.
        self.odometry(dt)
        sf = self.safety
        if self.kind == NONE:
            sf.check_hazards(False)
            return
        sf.check_wheels(int(dt * 1000))
        if self.kind == NONE:
            return  # a wheel fault stopped the drive
        fwd = self.kind != TURN and self.target >= 0
        if sf.check_hazards(fwd) or self.kind == NONE:
            return
        if self.modes.mode != modes.DRIVE or not sf.armed:
            self.abort(AB_MODE)
            return
        acc = self.p[_P_ACCEL] * _MPH * dt
        if self.kind == TURN:
            rem = self.target - self.progress
            if -_DONE_RAD < rem < _DONE_RAD:
                self._finish(0, 0)
                return
            wmax = self.speed_max / (self.track * 0.5)
            if wmax > _W_MAX:
                wmax = _W_MAX
            alpha = self.p[_P_ACCEL] * _MPH / (self.track * 0.5)
            wp = math.sqrt(2 * alpha * abs(rem))
            if wp > wmax:
                wp = wmax
            if wp < 0.01:
                wp = 0.01
            if rem < 0:
                wp = -wp
            dw = alpha * dt
            if wp > self.w_cmd + dw:
                wp = self.w_cmd + dw
            elif wp < self.w_cmd - dw:
                wp = self.w_cmd - dw
            self.w_cmd = wp
            self.v_cmd = 0.0
        else:
            rem = self.target - self.progress
            if -_DONE_M < rem < _DONE_M or (self.target >= 0) != (rem >= 0):
                self._finish(0, 0)
                return
            a = self.p[_P_ACCEL] * _MPH
            vp = math.sqrt(2 * a * abs(rem))
            if vp > self.speed_max:
                vp = self.speed_max
            if vp < _V_MIN:
                vp = _V_MIN
            if rem < 0:
                vp = -vp
            if vp > self.v_cmd + acc:
                vp = self.v_cmd + acc
            elif vp < self.v_cmd - acc:
                vp = self.v_cmd - acc
            self.v_cmd = vp
            if self.kind == ARC and self.radius != 0:
                href = self.h0 + self.progress / self.radius
                ff = vp / self.radius
            else:
                href = self.h0
                ff = 0.0
            w = ff + _K_HEADING * wrap(href - self.heading)
            if w > _W_MAX:
                w = _W_MAX
            elif w < -_W_MAX:
                w = -_W_MAX
            self.w_cmd = w
        half = self.w_cmd * self.track * 0.5
        self._wheels(self.v_cmd - half, self.v_cmd + half, dt)

    def _wheels(self, vl, vr, dt):
        sf = self.safety
        cur = self.hal.current_ma
        lim_ma = self.p[10] * 1000 * _I_LIMIT_FRAC  # overcurrent_a
        vf = self.v_free
        for i in range(6):
            if sf.state[i] != OK:
                self._integ[i] = 0.0
                continue
            tgt = vl if i < 3 else vr
            e = tgt - self.wheel_v[i]
            ig = self._integ[i] + e * dt
            if ig > 0.02:
                ig = 0.02
            elif ig < -0.02:
                ig = -0.02
            self._integ[i] = ig
            c = self._cap[i]
            if cur[i] > lim_ma:
                c *= 0.85
            elif c < 1.0:
                c += 0.02
                if c > 1.0:
                    c = 1.0
            self._cap[i] = c
            d = tgt / vf + _KP * e + _KI * ig
            if d > c:
                d = c
            elif d < -c:
                d = -c
            if -0.02 < tgt < 0.02 and -0.001 < tgt < 0.001:
                d = 0.0
            sf.output(i, d)
