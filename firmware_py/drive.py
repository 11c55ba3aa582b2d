# Drive: motion profiles and closed-loop wheel speed for six wheels, on the pose
# estimate of firmware_py.nav.
#
# Skid steering: wheels 0-2 left, 3-5 right. A motion (distance, turn, arc) is a
# body speed v and yaw rate w each control period: v follows a trapezoidal profile
# (the speed governor max_speed_mph and the commanded speed, re-read whenever a
# parameter changes, so a lower governor slows a running drive; the acceleration
# limit accel_mph_s; a square-root ramp down to the target), w holds the heading
# on the commanded path (its correction at most a sixteenth of the speed, so a
# slow drive's sides never reverse). Side speeds v -/+ w*track/2 are ground-speed
# targets; each becomes a rim-speed target through the estimated ground/rim ratio
# (Nav: slip from the soil model and the currents, and the camera's pose fixes),
# so the loop holds the best estimate of true speed, not the encoders' rate.
#
# Wheel loop, per working wheel (a DC motor: rim speed = free speed x (duty -
# load), I / I_stall = duty - speed / free speed), all feed-forward but a small
# correction, so the true speed does not overshoot:
#   - the rim target as a duty (speed / free speed);
#   - the motor's lag: the change of target times (tau - dt/2) / dt, what a
#     first-order lag under a duty held for the period needs to reach it;
#   - the load: the current above no-load over the stall current, low-passed over
#     a second (less the lag term's own torque): at a steady speed exactly the duty
#     the load takes, while the wheel lags an integral of the speed error measured
#     by the current (free of encoder quantization, which is 0.2 mm a count);
#     it starts from the soil model's rolling resistance and is kept between drives;
#   - the position lag (reference travel less encoder travel) through a gain
#     scaled with the speed, bounded to 1 % of the feed-forward + 3 Q15 when the
#     wheel lags (catching up never runs it much over its target) and to a
#     quarter when it leads; it stops integrating at the bound (anti-windup);
#   - a current limit (80 % of overcurrent_a, relaxed when the current falls).
# A wheel with a dead encoder (ENCODER_FAIL) still drives: open loop, at the mean
# duty of its side's closed-loop wheels.
#
# Completion: the progress along the path comes from the pose estimate (slip-
# corrected travel, plus the along-path part of each pose-fix correction). When
# the profile reaches the target the rover stops and, on a board with the camera,
# waits (up to _SETTLE_MS) for the at-rest pose fix; if the target is then more
# than position_tolerance_m away it drives the rest (at most _TRIMS times).
#
# A drive command while another runs is refused with BUSY (the dispatcher rejects
# it at acceptance, TM 1/2): the ground STOPs the first, or waits for it.
#
# The per-iteration path is integer only, so it allocates nothing under
# MicroPython: positions um, headings urad, speeds um/s, accelerations um/s^2,
# duty Q15, time ms, current mA.
from firmware_py import modes
from firmware_py.compat import const
from firmware_py.nav import PI_URAD, TWO_PI_URAD, Nav, cos_q14, isqrt, sin_q14, wrap  # noqa: F401
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

F_BUSY = const(6)

_P_MAX_SPEED = const(1)
_P_ACCEL = const(2)
_P_OVERCURRENT = const(10)
_P_TOLERANCE = const(12)
_P_VO_USE = const(33)

_MOVE = const(0)
_SETTLE = const(1)

_Q14 = const(16384)
_Q15 = const(32767)
_KI_NUM = const(656)  # Q15 duty per 1000 um of position lag
_INTEG_MAX = const(20000000)  # nm
_LAG_MAX = const(2000000)  # nm (ten encoder counts)
_LOAD_MS = const(1000)  # the load estimate's time constant
_V_REF = const(55556)
_FB_PCT = const(1)  # feedback bound, % of the feed-forward duty
_FB_MIN = const(3)  # ... plus this (Q15)  # um/s (200 m/h): full proportional and position gains
_K_HEADING_NUM = const(8)  # yaw rate urad/s per _K_HEADING_DEN urad of heading error
_K_HEADING_DEN = const(10)
_W_MAX = const(120000)  # urad/s
_V_MIN = const(4000)  # um/s: creep at the end of a ramp (or the commanded speed, if lower)
_W_MIN_MR = const(10)  # mrad/s
_DONE_UM = const(2000)
_DONE_URAD = const(5000)
_I_LIMIT_PCT = const(80)
_CAP_RELAX = const(655)
_SETTLE_MS = const(3000)
_PERIOD_MAX_MS = const(100)  # the control period while driving
_TRIMS = const(3)
_FIX_MAX_UM = const(1000000)  # a pose-fix correction larger than this is not progress


def _peak(r, a, vmax, vmin, r_cruise):
    # The speed from which deceleration a stops within r (v^2 = 2 a r), at most
    # vmax (any r beyond r_cruise), at least vmin. r um, a um/s^2, speeds um/s;
    # the square root is taken in 1/16 of the units so the products stay small.
    if r >= r_cruise:
        p = vmax
    else:
        p = isqrt(2 * a * (r >> 8)) << 4
        if p > vmax:
            p = vmax
    return p if p >= vmin else vmin


def _slew(target, current, step):
    # target, moved at most step from current
    if target > current + step:
        return current + step
    if target < current - step:
        return current - step
    return target


def _ums(mph):
    # m/h -> um/s (not for the control loop: floats)
    return int(mph * 2500 / 9 + 0.5)


class Drive:
    def __init__(self, board, hal, params, modes_, safety, events):
        geo = board.get("geometry", {})
        self.track_mm = int(geo.get("track_m", 1.0) * 1000)
        self.vfree = int(geo.get("wheel_free_speed_mps", 0.1) * 1000000)  # um/s
        mot = board.get("motor_model", {})
        self.i0_ma = int(mot.get("no_load_a", 0.12) * 1000)
        self.istall_ma = int(mot.get("stall_a", 3.2) * 1000)
        self.tau_ms = int(mot.get("lag_s", 0.15) * 1000)
        self.hal = hal
        self.params = params
        self.p = params.v
        self.modes = modes_
        self.safety = safety
        self.events = events
        self.nav = Nav(board, hal, safety)
        safety.on_abort = self.abort
        # readouts (kept for HK and the app)
        self.x_um = 0
        self.y_um = 0
        self.heading_urad = 0
        self.odometer_um = 0
        self.v16 = 0  # estimated body speed, 1/16 mm/s
        self.wheel_v16 = [0] * 6
        # motion
        self.kind = NONE
        self.phase = _MOVE
        self.target = 0  # um, or urad for TURN
        self.progress = 0  # signed um along the path, or urad turned
        self.cmd_ums = 0
        self.vmax = 0  # um/s
        self.radius_mm = 0
        self.h0 = 0
        self.v_cmd = 0  # um/s
        self.w_cmd = 0  # urad/s
        self.trims = 0
        self._fwd = True
        self._settle_ms = 0
        self._fixes0 = 0
        self._integ = [0] * 6
        self._cap = [_Q15] * 6
        self._duty = [0] * 6
        self._tgt = [0] * 6  # last period's rim target, um/s
        self._v_prev = 0
        # load duty estimate (Q15 x 16), from the rolling resistance of the soil model
        # until the current has measured it: c / F_STALL of the stall duty
        ld0 = int(board.get("soil", {}).get("rolling_c", 0.08) / mot.get("stall_force_ratio", 1.5) * _Q15 * 16)
        self._ld = [ld0] * 6
        self.token = None
        self.on_done = None  # on_done(token, failure_code); 0 is success
        self._pver = -1
        self._gov = 0
        self._a = 0
        self._lim_ma = 0
        self._tol_um = 0
        self._r_cruise = 0
        self._sync()

    def _sync(self):
        # integer copies of the parameters (runs when one changes: may allocate)
        p = self.p
        self._pver = self.params.version
        self._gov = _ums(p[_P_MAX_SPEED])
        self._a = max(1, _ums(p[_P_ACCEL]))
        self._lim_ma = int(p[_P_OVERCURRENT] * 10 * _I_LIMIT_PCT)
        self._tol_um = int(p[_P_TOLERANCE] * 1000000)
        self.nav.use_vo = len(p) <= _P_VO_USE or p[_P_VO_USE] >= 0.5
        if self._tol_um < _DONE_UM:
            self._tol_um = _DONE_UM
        c = self.cmd_ums
        self.vmax = c if 0 < c < self._gov else self._gov
        self._r_cruise = self.vmax * self.vmax // (2 * self._a)

    # -- readouts in HK units --
    @property
    def v(self):
        return self.nav.v_ums / 1000000.0  # m/s (not for the control loop)

    def heading_cdeg(self):
        return self.nav.heading_cdeg()

    def speed_dmph(self):
        return self.nav.speed_dmph()

    # -- commands (called from the dispatcher: may allocate) --
    def can_start(self, kind, target):
        # The failure code a start would fail with now (0: it can start); the
        # dispatcher reports a non-zero one as TM 1/4 (start failed).
        if self.kind != NONE:
            return F_BUSY
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
        self.cmd_ums = _ums(speed_mph)
        self._sync()
        self.kind = kind
        self.phase = _MOVE
        self.trims = 0
        self.target = int(target * 1000000)
        self._fwd = self.target >= 0
        self.radius_mm = int(radius * 1000)
        self.progress = 0
        self.v_cmd = 0
        self.w_cmd = 0
        self.h0 = self.nav.heading_urad
        self.token = token
        for i in range(6):
            self._integ[i] = 0
        if kind == TURN:
            self.events.emit(EV_DRIVE_STARTED, kind, 0, target * 57.29578)
        else:
            self.events.emit(EV_DRIVE_STARTED, kind, self.target // 1000, 0.0)
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
        nav = self.nav
        sf = self.safety
        commanded = False
        if sf.armed:
            for i in range(6):
                if sf.duty[i]:
                    commanded = True
        nav.update(dt_ms, commanded, self.v_cmd == self._v_prev)
        self._v_prev = self.v_cmd
        self.x_um = nav.x_um
        self.y_um = nav.y_um
        self.heading_urad = nav.heading_urad
        self.odometer_um = nav.odometer_um
        self.v16 = nav.v_ums * 16 // 1000
        wv = self.wheel_v16
        ws = nav.wheel_ums
        for i in range(6):
            wv[i] = ws[i] * 16 // 1000
        if self.kind == NONE:
            return
        if self.kind == TURN:
            self.progress += nav.dh_urad
        else:
            self.progress += nav.ds_um
            fx = nav.fix_dx_um
            fy = nav.fix_dy_um
            if (fx or fy) and -_FIX_MAX_UM < fx < _FIX_MAX_UM and -_FIX_MAX_UM < fy < _FIX_MAX_UM:
                self.progress += nav.along(fx, fy, nav.heading_urad)

    def step(self, dt_ms):
        # One control period of dt_ms: odometry, hazards, the motion's profile, wheel loops.
        self.odometry(dt_ms)
        sf = self.safety
        if self.kind == NONE:
            sf.check_hazards(False, dt_ms)
            return
        sf.check_wheels(dt_ms)
        if self.kind == NONE:
            return  # a wheel fault stopped the drive
        fwd = self.kind != TURN and self._fwd and self.phase == _MOVE
        if sf.check_hazards(fwd, dt_ms) or self.kind == NONE:
            return
        if self.modes.mode != modes.DRIVE or not sf.armed:
            self.abort(AB_MODE)
            return
        if self._pver != self.params.version:
            self._sync()
        rem = self.target - self.progress
        if self.phase == _SETTLE:
            if self._settle(rem, dt_ms):
                self._finish(0, 0)
                return
        else:
            kind = self.kind
            if kind == TURN:
                done = self._turn(rem, dt_ms)
            elif kind == ARC and self.radius_mm != 0:
                done = self._arc(rem, dt_ms)
            else:
                done = self._distance(rem, dt_ms)
            if done:
                if kind == TURN or not self.nav.vo_ok or not self.nav.use_vo:
                    self._finish(0, 0)
                    return
                self.phase = _SETTLE
                self._settle_ms = 0
                self._fixes0 = self.nav.fixes
                self.v_cmd = 0
                self.w_cmd = 0
        # side speeds v -/+ w * track/2: urad/s * mm / 2000 -> um/s
        half = self.w_cmd * (self.track_mm >> 1) // 1000
        self._wheels(self.v_cmd - half, self.v_cmd + half, dt_ms)

    def _settle(self, rem, dt_ms):
        # Stopped at the target: wait for the at-rest pose fix, then finish or
        # drive the rest. True when the drive is complete.
        self.v_cmd = 0
        self.w_cmd = 0
        self._settle_ms += dt_ms
        if self.nav.fixes == self._fixes0 and self._settle_ms < _SETTLE_MS:
            return False
        r = rem if rem >= 0 else -rem
        if r <= self._tol_um or self.trims >= _TRIMS:
            return True
        self.trims += 1
        self.phase = _MOVE
        self._fwd = rem >= 0
        return False

    # -- motion profiles: each returns True when the motion is done, else sets v_cmd and w_cmd --
    def _turn(self, rem, dt_ms):
        # Turn on the spot: yaw rate (mrad/s while profiled) ramps to the peak a wheel's
        # speed and acceleration allow at track/2 from the centre; no forward speed.
        if -_DONE_URAD < rem < _DONE_URAD:
            return True
        half = self.track_mm >> 1
        alpha = self._a // half  # um/s^2 / mm = mrad/s^2
        if alpha < 1:
            alpha = 1
        wmax = self.vmax // half  # mrad/s
        if wmax > _W_MAX // 1000:
            wmax = _W_MAX // 1000
        if wmax < _W_MIN_MR:
            wmax = _W_MIN_MR
        r = (rem if rem > 0 else -rem) // 1000  # mrad
        wp = isqrt(2 * alpha * r)
        if wp > wmax:
            wp = wmax
        elif wp < _W_MIN_MR:
            wp = _W_MIN_MR
        wp *= 1000
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
        q = self.progress // 1000  # mm
        # mm / mm = rad, at mrad resolution (the products kept under 2^30)
        href = self.h0 + (q * 1000 // rad) * 1000
        self._hold(href, self.v_cmd * 1000 // rad)
        return False

    def _speed(self, rem, dt_ms):
        # Body speed along the path (distance and arc): ramps to the peak the
        # acceleration allows to stop in the remaining distance, within vmax.
        if -_DONE_UM < rem < _DONE_UM or (rem >= 0) != self._fwd:
            return True
        vmax = self.vmax
        vmin = _V_MIN if _V_MIN < vmax else vmax
        vp = _peak(rem if rem > 0 else -rem, self._a, vmax, vmin, self._r_cruise)
        if rem < 0:
            vp = -vp
        # um/s gained in a period (a first period after a long idle one counts as one)
        acc = self._a * (dt_ms if dt_ms < _PERIOD_MAX_MS else _PERIOD_MAX_MS) // 1000
        if acc < 1:
            acc = 1
        self.v_cmd = _slew(vp, self.v_cmd, acc)
        return False

    def _hold(self, href, ff):
        # Yaw rate: feed-forward ff (urad/s) plus the heading error's correction,
        # the correction at most a sixteenth of the speed's side-speed worth (so a slow
        # drive's sides never reverse), the whole limited.
        c = _K_HEADING_NUM * wrap(href - self.nav.heading_urad) // _K_HEADING_DEN
        v = self.v_cmd if self.v_cmd >= 0 else -self.v_cmd
        lim = v * 1000 // (self.track_mm << 3) + 10
        if c > lim:
            c = lim
        elif c < -lim:
            c = -lim
        w = ff + c
        if w > _W_MAX:
            w = _W_MAX
        elif w < -_W_MAX:
            w = -_W_MAX
        self.w_cmd = w

    def _wheels(self, vl, vr, dt_ms):
        # ground-speed targets vl, vr (um/s) -> rim targets -> duties
        sf = self.safety
        st = sf.state
        cur = self.hal.current_ma
        lim_ma = self._lim_ma
        vf16 = self.vfree >> 4  # duty Q15 = speed * 2048 // (free speed / 16): small ints
        trav = self.nav.wheel_d
        gr = self.nav.gr_q14
        g4 = gr >> 2  # speeds x Q14 / gr, the products kept under 2^30
        vl = vl * 4096 // g4
        vr = vr * 4096 // g4
        i0 = self.i0_ma
        ist64 = self.istall_ma >> 6  # (mA x 2) x Q15 x 8 / I_stall = (mA x 2) x 4096 / (I_stall / 64)
        duty = self._duty
        integ = self._integ
        tgts = self._tgt
        caps = self._cap
        lds = self._ld
        # the motor's lag fed forward (see below): its factor, and the load filter's
        # gain, are the same for every wheel
        lag = self.tau_ms - (dt_ms >> 1)
        kld = dt_ms if dt_ms < _LOAD_MS else _LOAD_MS
        dsum0 = 0
        dsum1 = 0
        n0 = 0
        n1 = 0
        # the terms that depend only on the target and the last one (the same for a side's
        # wheels): worked out again when they change
        k_tgt = 0
        k_prev = 0
        acc = 0
        acc16 = 0
        a = 0
        ff = 0
        lim_fb = 0
        lim_all = 0
        for i in range(6):
            if st[i] != OK:
                integ[i] = 0
                tgts[i] = 0
                continue
            tgt = vl if i < 3 else vr
            prev = tgts[i]
            tgts[i] = tgt
            if tgt == 0:
                integ[i] = 0
                duty[i] = 0
                sf.output(i, 0)
                continue
            if tgt != k_tgt or prev != k_prev:
                k_tgt = tgt
                k_prev = prev
                # the motor's lag: the speed change asked for this period, fed forward
                # (a first-order lag tau under a duty held for the period dt reaches a step
                # Δ when asked for Δ (tau/dt + 1/2): Δ (tau - dt/2) / dt more than the target)
                acc = (tgt - prev) * lag // dt_ms if dt_ms > 0 else 0
                acc = acc * 2048 // vf16
                acc16 = (acc if tgt > 0 else -acc) << 4
                # proportional and position terms scaled with the speed (encoder
                # quantization is large against a slow target)
                a = tgt if tgt >= 0 else -tgt
                if a > _V_REF:
                    a = _V_REF
                ff = tgt * 2048 // vf16
                # feedback bounded to _FB_PCT of the speed's duty: catching up a lag never
                # drives the wheel more than that over its target; and within a quarter
                af = ff if ff >= 0 else -ff
                lim_fb = af * _FB_PCT // 100 + _FB_MIN
                lim_all = (af >> 2) + _FB_MIN
            # the integral is the wheel's position lag (nm): reference travel less encoder
            # travel; it stops growing while the feedback is at its bound (anti-windup)
            ig0 = integ[i]
            # (a lag is kept to _LAG_MAX: a wheel that started late does not chase the
            # lost distance; a lead up to _INTEG_MAX, so a wheel running ahead is slowed)
            ig = ig0 + prev * dt_ms - trav[i] * 1000
            if tgt > 0:
                if ig > _LAG_MAX:
                    ig = _LAG_MAX
                elif ig < -_INTEG_MAX:
                    ig = -_INTEG_MAX
            elif ig < -_LAG_MAX:
                ig = -_LAG_MAX
            elif ig > _INTEG_MAX:
                ig = _INTEG_MAX
            c = caps[i]
            ci = cur[i]
            if ci > lim_ma:
                c = c * 85 // 100
            elif c < _Q15:
                c += _CAP_RELAX
                if c > _Q15:
                    c = _Q15
            caps[i] = c
            # load: the current above no-load as a duty (I / I_stall = duty - speed /
            # free speed for a DC motor), low-passed over _LOAD_MS: at a steady speed it
            # is the duty the load takes; while the wheel lags it grows (an integral of
            # the speed error measured by the current, free of encoder quantization)
            # (x16 for precision; the sensor's whole mA are truncated: + 0.5 mA), less
            # the torque the acceleration feed-forward asked for
            m = ((ci - i0) * 2 + 1) * 4096 // ist64 if ci > i0 else 0
            m -= acc16
            ld = lds[i]  # a magnitude, kept from drive to drive
            ld += (m - ld) * kld // _LOAD_MS
            if ld < 0:
                ld = 0
            lds[i] = ld
            ld >>= 4
            if tgt < 0:
                ld = -ld
            # the position term (rounded, not floored: a floor's bias is a whole Q15 step
            # at 1 m/h), scaled with the speed
            fb = ((ig // 1000) * _KI_NUM + 500) // 1000
            fb = (fb * a + (_V_REF >> 1)) // _V_REF
            # (asymmetric: slowing a wheel that runs ahead is never limited as much)
            if tgt > 0 and fb > lim_fb or tgt < 0 and fb < -lim_fb:
                fb = lim_fb if tgt > 0 else -lim_fb
                if (ig > ig0) == (tgt > 0):
                    ig = ig0
            if fb > lim_all:
                fb = lim_all
            elif fb < -lim_all:
                fb = -lim_all
            integ[i] = ig
            d = ff + acc + ld + fb
            if d > c:
                d = c
            elif d < -c:
                d = -c
            duty[i] = d
            sf.output(i, d)
            if i < 3:
                dsum0 += d
                n0 += 1
            else:
                dsum1 += d
                n1 += 1
        # a dead encoder: the wheel drives open loop at its side's mean duty
        for i in range(6):
            if st[i] == ENCODER_FAIL:
                if i < 3:
                    d = dsum0 // n0 if n0 else 0
                else:
                    d = dsum1 // n1 if n1 else 0
                duty[i] = d
                sf.output(i, d)
