# Drive: odometry, motion profiles and closed-loop wheel speed for six wheels.
#
# Skid steering: wheels 0-2 left, 3-5 right. A motion (distance, turn, arc) is
# a body speed v and yaw rate w each control period: v follows a trapezoidal
# profile (the speed governor max_speed_mph, the acceleration limit
# accel_mph_s, a square-root ramp down to the target), w holds the heading
# (IMU gyro integrated) on the commanded path. Side speeds v -/+ w*track/2 are
# wheel speed targets; each working wheel runs a PI loop with feed-forward and
# a current limit, so when a wheel is isolated the others on its side take its
# share and the heading loop holds the path.
#
# Odometry: per side, the mean encoder travel of that side's working wheels
# (any wheel with a live encoder if none); heading from the gyro.
#
# The per-iteration path is integer only, so it allocates nothing under
# MicroPython (floats are heap objects there):
#   positions um, headings urad, speeds "v16" = 1/16 mm/s, accelerations
#   1/16 mm/s^2, duty Q15, time ms; sin/cos from a 256-entry quarter-wave table.
# Public float-free readouts: x_um, y_um, heading_urad, odometer_um, v16,
# wheel_v16[6]; helpers for HK units below.
from array import array

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
_P_OVERCURRENT = const(10)

PI_URAD = const(3141593)
TWO_PI_URAD = const(6283185)
_HALF_PI_URAD = const(1570796)
_Q14 = const(16384)
_Q15 = const(32767)
_KP = const(12)  # Q15 duty per v16 of speed error
_KI_NUM = const(41)  # Q15 duty per 1000 v16*ms of integrated error
_INTEG_MAX = const(320000)  # v16*ms (20 mm)
_K_HEADING_NUM = const(8)  # yaw rate urad/s per _K_HEADING_DEN urad of heading error
_K_HEADING_DEN = const(10)
_W_MAX = const(120000)  # urad/s
_V_MIN16 = const(64)  # 4 mm/s creep at the end of a ramp
_W_MIN_MR = const(10)  # mrad/s
_DONE_UM = const(2000)
_DONE_URAD = const(5000)
_I_LIMIT_PCT = const(80)
_CAP_RELAX = const(655)

# scaling of the profiles' integers
_UM_PER_MM = const(1000)
_URAD_PER_MRAD = const(1000)
_MRAD_PER_RAD = const(1000)
_MS_PER_S = const(1000)
_V16_PER_MM_S = const(16)  # speeds in 1/16 mm/s
_HALF_V16_PER_MM_S = const(8)  # _V16_PER_MM_S / 2: the half track of the side speeds
# stopping speed from a16 (1/16 mm/s^2) and the distance left d (mm): v16^2 = 2 a d * 16^2
# = 32 * a16 * d
_STOP_V16_K = const(32)
# arc yaw rate v / R: v16 / 16 mm/s over R mm, in urad/s = v16 * (1000000 / 16) // R
_URAD_S_PER_V16_PER_MM = const(62500)


def _make_sin():
    import math

    t = array("h", [0] * 257)
    for i in range(257):
        t[i] = int(round(math.sin(i * math.pi / 512) * _Q14))
    return t


_SIN = _make_sin()  # sin over a quarter wave, Q14, 256 steps + end point


def sin_q14(a):
    # sin of an angle in urad, Q14, linear interpolation in the quarter-wave table
    a %= TWO_PI_URAD
    neg = False
    if a >= PI_URAD:
        a -= PI_URAD
        neg = True
    if a > _HALF_PI_URAD:
        a = PI_URAD - a
    # index in 1/1024 of a turn: a * 1024 / 2pi, kept below 2^30
    pos = a * 256 // 6136  # 2pi/1024 = 6136 urad
    i = pos >> 8
    f = pos & 0xFF
    if i >= 256:
        v = _SIN[256]
    else:
        v = _SIN[i] + (((_SIN[i + 1] - _SIN[i]) * f) >> 8)
    return -v if neg else v


def cos_q14(a):
    return sin_q14(a + _HALF_PI_URAD)


def isqrt(n):
    if n < 2:
        return n
    x = n
    y = (x + 1) >> 1
    while y < x:
        x = y
        y = (x + n // x) >> 1
    return x


def _peak(r, a2, vmax, vmin):
    # The speed from which a2 / 2 of deceleration stops within r: sqrt(a2 * r), at most
    # vmax (tested first: no big ints), at least vmin.
    if r >= vmax * vmax // a2:
        p = vmax
    else:
        p = isqrt(a2 * r)
    return p if p >= vmin else vmin


def _slew(target, current, step):
    # target, moved at most step from current
    if target > current + step:
        return current + step
    if target < current - step:
        return current - step
    return target


def wrap(a):
    # an angle in urad to -pi..pi
    while a > PI_URAD:
        a -= TWO_PI_URAD
    while a < -PI_URAD:
        a += TWO_PI_URAD
    return a


class Drive:
    def __init__(self, board, hal, params, modes_, safety, events):
        geo = board.get("geometry", {})
        self.track_mm = int(geo.get("track_m", 1.0) * 1000)
        self.vfree16 = int(geo.get("wheel_free_speed_mps", 0.1) * 16000)
        cpm = board.get("encoders", {}).get("counts_per_m", 5000)
        self.um_per_count = 1000000 // cpm
        self.hal = hal
        self.params = params
        self.p = params.v
        self.modes = modes_
        self.safety = safety
        self.events = events
        safety.on_abort = self.abort
        # odometry
        self.x_um = 0
        self.y_um = 0
        self.heading_urad = 0
        self.odometer_um = 0
        self.v16 = 0  # measured body speed
        self.wheel_v16 = [0] * 6
        self._enc = [0] * 6
        self._enc_ok = False
        # motion
        self.kind = NONE
        self.target = 0  # um, or urad for TURN
        self.progress = 0  # signed um along the path, or urad turned
        self.vmax16 = 0
        self.radius_mm = 0
        self.h0 = 0
        self.v_cmd = 0  # v16
        self.w_cmd = 0  # urad/s
        self._integ = [0] * 6
        self._cap = [_Q15] * 6
        self.token = None
        self.on_done = None  # on_done(token, failure_code); 0 is success
        self._pver = -1
        self._gov16 = 0
        self._a16 = 0
        self._lim_ma = 0

    def _sync(self):
        p = self.p
        self._pver = self.params.version
        self._gov16 = int(p[_P_MAX_SPEED] * 40 / 9)  # m/h -> 1/16 mm/s
        self._a16 = max(1, int(p[_P_ACCEL] * 40 / 9))
        self._lim_ma = int(p[_P_OVERCURRENT] * 10 * _I_LIMIT_PCT)

    # -- readouts in HK units --
    @property
    def v(self):
        return self.v16 / 16000.0  # m/s (not for the control loop)

    def heading_cdeg(self):
        return wrap(self.heading_urad) * 180 // 31416  # urad -> 0.01 deg, small ints

    def speed_dmph(self):
        return self.v16 * 9 // 4  # 0.1 m/h

    # -- commands (called from the dispatcher: may allocate) --
    def can_start(self, kind, target):
        # The failure code a start would fail with now (0: it can start); the
        # dispatcher reports a non-zero one as TM 1/4 (start failed).
        sf = self.safety
        if not sf.wheels_available():
            return 10  # WHEEL_UNAVAILABLE
        if sf.tilt_latched or (kind != TURN and target >= 0 and sf.obstacle_ahead()):
            return 11  # HAZARD
        m = self.modes.mode
        if m != modes.STANDBY and m != modes.DRIVE:
            return 4  # WRONG_MODE
        return 0

    def start(self, kind, target, speed_mph, radius, token):
        # target: metres (DISTANCE, ARC) or radians (TURN); radius metres.
        # Returns a failure code (0 when started).
        code = self.can_start(kind, target)
        if code:
            return code
        if self.modes.mode == modes.STANDBY:
            self.modes.request(modes.DRIVE, modes.R_COMMAND)
        if self.modes.mode != modes.DRIVE or not self.safety.arm():
            return 4  # WRONG_MODE
        if self.kind != NONE:
            self._finish(14, AB_COMMAND)  # ABORTED by a newer command
            self.modes.request(modes.DRIVE, modes.R_COMMAND)
            self.safety.arm()
        self._sync()
        v16 = int(speed_mph * 40 / 9)
        self.vmax16 = v16 if v16 < self._gov16 else self._gov16
        self.kind = kind
        self.target = int(target * 1000000)
        self.radius_mm = int(radius * 1000)
        self.progress = 0
        self.h0 = self.heading_urad
        self.token = token
        for i in range(6):
            self._integ[i] = 0
        tmm = self.target // 1000 if kind != TURN else self.target * 180 // 31416
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
        self.v_cmd = 0
        self.w_cmd = 0
        self.safety.disarm()
        trav = self.progress // 1000 if kind != TURN else 0
        if code == 0:
            self.events.emit(EV_DRIVE_COMPLETED, kind, trav, self.heading_cdeg())
        else:
            self.events.emit(EV_DRIVE_ABORTED, reason, trav)
        if self.modes.mode == modes.DRIVE:
            self.modes.request(modes.STANDBY, modes.R_COMMAND)
        tok = self.token
        self.token = None
        if self.on_done is not None and tok is not None:
            self.on_done(tok, code)

    # -- control loop: integers only --
    def odometry(self, dt_ms):
        enc = self.hal.enc
        st = self.safety.state
        upc = self.um_per_count
        if not self._enc_ok:
            for i in range(6):
                self._enc[i] = enc[i]
            self._enc_ok = True
        dl = 0
        dr = 0
        nl = 0
        nr = 0
        al = 0
        ar = 0
        bl = 0
        br = 0
        wv = self.wheel_v16
        for i in range(6):
            d = (enc[i] - self._enc[i]) * upc
            self._enc[i] = enc[i]
            if dt_ms > 0:
                raw = d * 16 // dt_ms  # um/ms = mm/s, x16
                wv[i] += (raw - wv[i]) * 3 // 10
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
        dl = dl // nl if nl else (al // bl if bl else 0)
        dr = dr // nr if nr else (ar // br if br else 0)
        ds = (dl + dr) >> 1
        dh = self.hal.yaw_urad_s * dt_ms // 1000
        h = self.heading_urad + (dh >> 1)
        self.x_um += (ds * cos_q14(h)) >> 14
        self.y_um += (ds * sin_q14(h)) >> 14
        self.heading_urad += dh
        self.odometer_um += ds if ds >= 0 else -ds
        if dt_ms > 0:
            self.v16 += (ds * 16 // dt_ms - self.v16) * 3 // 10
        if self.kind == TURN:
            self.progress += dh
        else:
            self.progress += ds

    def step(self, dt_ms):
        # One control period of dt_ms: odometry, hazards, the motion's profile, wheel loops.
        self.odometry(dt_ms)
        sf = self.safety
        if self.kind == NONE:
            sf.check_hazards(False)
            return
        sf.check_wheels(dt_ms)
        if self.kind == NONE:
            return  # a wheel fault stopped the drive
        fwd = self.kind != TURN and self.target >= 0
        if sf.check_hazards(fwd) or self.kind == NONE:
            return
        if self.modes.mode != modes.DRIVE or not sf.armed:
            self.abort(AB_MODE)
            return
        if self._pver != self.params.version:
            self._sync()
        rem = self.target - self.progress
        kind = self.kind
        if kind == TURN:
            done = self._turn(rem, dt_ms)
        elif kind == ARC and self.radius_mm != 0:
            done = self._arc(rem, dt_ms)
        else:
            done = self._distance(rem, dt_ms)
        if done:
            self._finish(0, 0)
            return
        # side speeds v -/+ w * track/2: urad/s * (mm * v16 per mm/s / 2 per 1000) / 1000 -> v16
        half16 = self.w_cmd * (self.track_mm * _HALF_V16_PER_MM_S // _UM_PER_MM) // _URAD_PER_MRAD
        self._wheels(self.v_cmd - half16, self.v_cmd + half16, dt_ms)

    # -- motion profiles: each returns True when the motion is done, else sets v_cmd and w_cmd --
    def _turn(self, rem, dt_ms):
        # Turn on the spot: yaw rate (mrad/s while profiled) ramps to the peak a wheel's
        # speed and acceleration allow at track/2 from the centre; no forward speed.
        if -_DONE_URAD < rem < _DONE_URAD:
            return True
        half = self.track_mm >> 1
        alpha = self._a16 * _MRAD_PER_RAD // (_V16_PER_MM_S * half)  # mrad/s^2
        if alpha < 1:
            alpha = 1
        wmax = self.vmax16 * _MRAD_PER_RAD // (_V16_PER_MM_S * half)  # mrad/s
        if wmax > _W_MAX // _URAD_PER_MRAD:
            wmax = _W_MAX // _URAD_PER_MRAD
        r = (rem if rem > 0 else -rem) // _URAD_PER_MRAD  # mrad
        # w^2 = 2 alpha r in mrad/s, mrad/s^2 and mrad
        wp = _peak(r, 2 * alpha, wmax, _W_MIN_MR) * _URAD_PER_MRAD
        if rem < 0:
            wp = -wp
        # mrad/s^2 * ms = urad/s gained in a period
        self.w_cmd = _slew(wp, self.w_cmd, alpha * dt_ms)
        self.v_cmd = 0
        return False

    def _distance(self, rem, dt_ms):
        # Straight line: the speed profile, the heading held at the start's.
        if self._speed(rem, dt_ms):
            return True
        self._hold(self.h0, 0)
        return False

    def _arc(self, rem, dt_ms):
        # Arc of radius_mm (signed): the speed profile, the heading reference turning with
        # the distance covered (at mm precision), the yaw rate fed forward from the speed.
        if self._speed(rem, dt_ms):
            return True
        rad = self.radius_mm
        q = (self.progress // _UM_PER_MM) * _UM_PER_MM  # um
        # um / mm = mrad: whole and fractional parts, kept small
        href = self.h0 + (q // rad) * _URAD_PER_MRAD + (q % rad) * _URAD_PER_MRAD // rad
        self._hold(href, self.v_cmd * _URAD_S_PER_V16_PER_MM // rad)
        return False

    def _speed(self, rem, dt_ms):
        # Body speed along the path (distance and arc): v16 ramps to the peak the
        # acceleration allows to stop in the remaining distance, within vmax16.
        if -_DONE_UM < rem < _DONE_UM or (self.target >= 0) != (rem >= 0):
            return True
        r = (rem if rem > 0 else -rem) // _UM_PER_MM  # mm
        vp = _peak(r, _STOP_V16_K * self._a16, self.vmax16, _V_MIN16)
        if rem < 0:
            vp = -vp
        acc = self._a16 * dt_ms // _MS_PER_S  # v16 gained in a period
        if acc < 1:
            acc = 1
        self.v_cmd = _slew(vp, self.v_cmd, acc)
        return False

    def _hold(self, href, ff):
        # Yaw rate: feed-forward ff (urad/s) plus the heading error's correction, limited.
        w = ff + _K_HEADING_NUM * wrap(href - self.heading_urad) // _K_HEADING_DEN
        if w > _W_MAX:
            w = _W_MAX
        elif w < -_W_MAX:
            w = -_W_MAX
        self.w_cmd = w

    def _wheels(self, vl, vr, dt_ms):
        sf = self.safety
        cur = self.hal.current_ma
        lim_ma = self._lim_ma
        vf = self.vfree16
        wv = self.wheel_v16
        for i in range(6):
            if sf.state[i] != OK:
                self._integ[i] = 0
                continue
            tgt = vl if i < 3 else vr
            e = tgt - wv[i]
            ig = self._integ[i] + e * dt_ms
            if ig > _INTEG_MAX:
                ig = _INTEG_MAX
            elif ig < -_INTEG_MAX:
                ig = -_INTEG_MAX
            self._integ[i] = ig
            c = self._cap[i]
            if cur[i] > lim_ma:
                c = c * 85 // 100
            elif c < _Q15:
                c += _CAP_RELAX
                if c > _Q15:
                    c = _Q15
            self._cap[i] = c
            d = tgt * _Q15 // vf + _KP * e + ig * _KI_NUM // 1000
            if d > c:
                d = c
            elif d < -c:
                d = -c
            if tgt == 0:
                d = 0
            sf.output(i, d)
