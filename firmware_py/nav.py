# Nav: the rover's pose estimate from what a rover has (IMU, wheels, a camera).
#
# Heading: the gyro integrated, less its bias. The bias is estimated while the
# rover stands still (no wheel commanded, no encoder moving for _REST_MS): a
# running mean of the gyro over the first _BIAS_N samples, then a slow average;
# at rest the heading is not integrated at all (zero-velocity update), so it does
# not drift while parked.
#
# Travel: per side, from the wheels whose encoder is alive. A wheel that rolls
# unpowered (disabled, open circuit) turns with the ground: when a side has one,
# its encoder is the side's travel. Otherwise the side's travel is the mean of its
# driven wheels times (1 - slip), the slip from the soil model (a terramechanics
# traction curve after Bekker and Wong: a wheel pulling c times its share of the
# weight slips s = -S0 ln(1 - c / MU_MAX), loose lunar soil MU_MAX 0.5, S0 0.1)
# with c from the motor current (c = F_STALL (I - I_0) / I_stall for a DC motor
# whose stall force is F_STALL times the wheel's weight share). The slip is
# learnt only while the speed target is steady (an acceleration's torque is not
# drawbar pull) and low-passed over _SLIP_MS. Then the visual-odometry scale: at
# each pose fix, the distance the camera saw since the previous fix over the
# (slip-corrected) wheel distance, averaged over fixes: what the soil model
# misses (soil, slope, a rock under a wheel).
# The figures come from the board's "motor_model" (no_load_a 0.12, stall_a 3.2,
# stall_force_ratio 1.5) and "soil" (mu_max 0.5, s0 0.1) entries, defaults shown.
# On a board without the camera (rp2: vo_seq stays 0), or with parameter vo_use
# at 0, the estimate is IMU + odometry + the slip model.
#
# Pose fixes (hal.vo_seq changes; sim board): the position is reset to the fix
# (the camera's error is a slow random walk, far better than slipping wheels);
# the heading moves a quarter of the way to the fix's (the bias-corrected gyro is
# the better short-term heading; the fix bounds its long-term drift). The first
# fix after boot is taken whole (the frame is the camera's world frame).
# fix_dx_um/fix_dy_um hold the correction the last fix applied, for the drive.
#
# err_mm: the rover's own 1-sigma position error: 3 mm after a fix, growing by
# _ERR_PPM of the distance driven since (more without the camera scale).
#
# Integers only on the per-period path (um, urad, um/s, mA, Q14): no allocation.
from firmware_py.compat import const

OK = const(0)  # wheel_state values (firmware_py.safety)
DISABLED = const(1)
OPEN_CIRCUIT = const(4)
ENCODER_FAIL = const(5)

PI_URAD = const(3141593)
TWO_PI_URAD = const(6283185)
_HALF_PI_URAD = const(1570796)
_Q14 = const(16384)
_REST_MS = const(1000)
_BIAS_N = const(4096)
_SLIP_MS = const(1000)
_SCALE_MIN = const(8192)  # ground/rim ratio bounds, Q14
_SCALE_MAX = const(17203)
_ERR_FIX_MM = const(3)
_ERR_PPM = const(5000)  # 0.5 % of the distance since the last fix, with a learned scale
_ERR_PPM_RAW = const(20000)  # 2 %, before any fix


def _make_sin():
    import math
    from array import array

    t = array("h", [0] * 257)
    for i in range(257):
        t[i] = int(round(math.sin(i * math.pi / 512) * _Q14))
    return t


_SIN = _make_sin()  # sin over a quarter wave, Q14, 256 steps + end point


def _make_slip(s0):
    # slip (Q14) against c / MU_MAX in 32 steps from 0 to 31/32: -S0 ln(1 - x)
    import math
    from array import array

    t = array("H", [0] * 33)
    for i in range(33):
        x = i / 32.0 if i < 32 else 0.995
        t[i] = int(-s0 * math.log(1.0 - x) * _Q14 + 0.5)
    return t


def sin_q14(a):
    # sin of an angle in urad, Q14, linear interpolation in the quarter-wave table
    a %= TWO_PI_URAD
    neg = False
    if a >= PI_URAD:
        a -= PI_URAD
        neg = True
    if a > _HALF_PI_URAD:
        a = PI_URAD - a
    pos = a * 256 // 6136  # index in 1/1024 of a turn (2pi/1024 = 6136 urad), x256
    i = pos >> 8
    f = pos & 0xFF
    if i >= 256:
        v = _SIN[256]
    else:
        v = _SIN[i] + (((_SIN[i + 1] - _SIN[i]) * f) >> 8)
    return -v if neg else v


def cos_q14(a):
    return sin_q14(a + _HALF_PI_URAD)


def wrap(a):
    # an angle in urad to -pi..pi
    while a > PI_URAD:
        a -= TWO_PI_URAD
    while a < -PI_URAD:
        a += TWO_PI_URAD
    return a


def isqrt(n):
    if n < 2:
        return n
    x = n
    y = (x + 1) >> 1
    while y < x:
        x = y
        y = (x + n // x) >> 1
    return x


class Nav:
    def __init__(self, board, hal, safety):
        cpm = board.get("encoders", {}).get("counts_per_m", 5000)
        self.um_per_count = 1000000 // cpm
        mot = board.get("motor_model", {})
        soil = board.get("soil", {})
        self.i0_ma = int(mot.get("no_load_a", 0.12) * 1000)
        self.istall_ma = int(mot.get("stall_a", 3.2) * 1000)
        # c / MU_MAX per mA above no-load, Q14 x 1000: F_STALL / I_stall / MU_MAX
        self._x_per_ma = int(mot.get("stall_force_ratio", 1.5) / soil.get("mu_max", 0.5) * _Q14 * 1000) // self.istall_ma
        self._slip_t = _make_slip(soil.get("s0", 0.1))
        self.slip_q14 = [0, 0]  # per side
        self.hal = hal
        self.safety = safety
        self.has_vo = hasattr(hal, "vo_seq")
        self.use_vo = True  # parameter vo_use (the drive sets it)
        # pose estimate
        self.x_um = 0
        self.y_um = 0
        self.heading_urad = 0
        self.odometer_um = 0
        self.v_ums = 0  # ground speed estimate, um/s (filtered)
        self.ds_um = 0  # this period's ground travel, signed
        self.dh_urad = 0  # this period's heading change
        self.err_mm = 0
        # wheels
        self.wheel_ums = [0] * 6  # rim speeds, um/s, fast filter (HK, control)
        self._enc = [0] * 6
        self._enc_ok = False
        self._d = [0] * 6
        self.wheel_d = self._d  # this period's rim travel per wheel, um
        # gyro
        self.bias_urad_s = 0
        self._bias_acc = 0  # sum of samples (first _BIAS_N), then bias x _BIAS_N
        self._bias_n = 0
        self._h_rem = 0
        self.rest_ms = 0
        self.at_rest = False
        # pose fixes
        self.vo_seq = 0
        self.fixes = 0
        self.scale_q14 = _Q14
        self.gr_q14 = _Q14  # ground/rim ratio in use (slip models x camera scale)
        self._scale_n = 0
        self._since_fix_um = 0  # |wheel| distance since the last fix (slip-corrected)
        self._fix_x = 0
        self._fix_y = 0
        self.fix_dx_um = 0
        self.fix_dy_um = 0
        self.vo_ok = False

    # -- readouts --
    def heading_cdeg(self):
        return wrap(self.heading_urad) * 180 // 31416

    def speed_dmph(self):
        return self.v_ums * 36 // 1000  # um/s -> 0.1 m/h

    # -- per control period --
    def update(self, dt_ms, commanded, steady=True):
        # commanded: a wheel is being driven this period; steady: its speed target
        # did not change (the current is then the soil's pull, not acceleration)
        hal = self.hal
        enc = hal.enc
        st = self.safety.state
        upc = self.um_per_count
        d = self._d
        if not self._enc_ok:
            for i in range(6):
                self._enc[i] = enc[i]
            self._enc_ok = True
        moved = False
        last = self._enc
        wu = self.wheel_ums
        for i in range(6):
            e = enc[i]
            di = (e - last[i]) * upc
            last[i] = e
            d[i] = di
            if di:
                moved = True
            if dt_ms > 0:
                raw = di * 1000 // dt_ms
                u = wu[i]
                wu[i] = u + (raw - u) * 3 // 10
        dl = self._side(0, st, dt_ms, steady)
        dr = self._side(3, st, dt_ms, steady)
        sc = self.scale_q14
        self.gr_q14 = (_Q14 - ((self.slip_q14[0] + self.slip_q14[1]) >> 1)) * sc >> 14
        ds = ((dl + dr) >> 1) * sc >> 14
        self.ds_um = ds
        # heading: gyro less bias; not integrated at rest (and the bias learnt there)
        if commanded or moved:
            self.rest_ms = 0
            self.at_rest = False
        elif not self.at_rest:
            self.rest_ms += dt_ms
            if self.rest_ms >= _REST_MS:
                self.at_rest = True
        w = hal.yaw_urad_s
        if self.at_rest:
            self._learn_bias(w)
            dh = 0
        else:
            acc = (w - self.bias_urad_s) * dt_ms + self._h_rem
            dh = acc // 1000
            self._h_rem = acc - dh * 1000
        self.dh_urad = dh
        h = self.heading_urad + (dh >> 1)
        self.x_um += (ds * cos_q14(h)) >> 14
        self.y_um += (ds * sin_q14(h)) >> 14
        self.heading_urad += dh
        a = ds if ds >= 0 else -ds
        self.odometer_um += a
        self._since_fix_um += a
        self.err_mm += a * (_ERR_PPM if self._scale_n else _ERR_PPM_RAW) // 1000000000
        if dt_ms > 0:
            self.v_ums += (ds * 1000 // dt_ms - self.v_ums) * 3 // 10
        self.fix_dx_um = 0
        self.fix_dy_um = 0
        if self.has_vo and hal.vo_seq != self.vo_seq:
            if self.use_vo:
                self._fix(hal.vo_seq)
            else:
                self.vo_seq = hal.vo_seq

    def _side(self, first, st, dt_ms, steady):
        # The side's ground travel this period, um (and its slip estimate).
        d = self._d
        cur = self.hal.current_ma
        n = 0
        tot = 0
        nc = 0
        itot = 0
        free = -1
        for i in range(first, first + 3):
            s = st[i]
            if s == DISABLED or s == OPEN_CIRCUIT:
                free = i
            elif s == OK:
                tot += d[i]
                n += 1
                itot += cur[i]
                nc += 1
            elif s == ENCODER_FAIL:
                itot += cur[i]
                nc += 1
        side = first // 3
        sl = self.slip_q14[side]
        if steady and nc and dt_ms > 0:
            ex = itot // nc - self.i0_ma
            x = ex * self._x_per_ma // 1000 if ex > 0 else 0  # c / MU_MAX, Q14
            if x > 16300:
                x = 16300
            k = x >> 9  # 32 steps
            t = self._slip_t
            m = t[k] + ((t[k + 1] - t[k]) * (x & 511) >> 9)
            sl += (m - sl) * (dt_ms if dt_ms < _SLIP_MS else _SLIP_MS) // _SLIP_MS
            self.slip_q14[side] = sl
        if free >= 0:
            return d[free]  # rolls with the ground
        if n == 0:
            return 0
        return (tot // n) * (_Q14 - sl) >> 14

    def _learn_bias(self, w):
        if self._bias_n < _BIAS_N:
            self._bias_acc += w
            self._bias_n += 1
            self.bias_urad_s = self._bias_acc // self._bias_n
        else:
            # slow average: bias x _BIAS_N kept in _bias_acc
            self._bias_acc += w - self._bias_acc // _BIAS_N
            self.bias_urad_s = self._bias_acc // _BIAS_N

    def _fix(self, seq):
        hal = self.hal
        self.vo_seq = seq
        fx = hal.vo_x_mm * 1000
        fy = hal.vo_y_mm * 1000
        fh = hal.vo_h_cdeg * 31416 // 180
        if self.vo_ok:
            # the camera's distance since the previous fix over the wheels'
            dx = (fx - self._fix_x) // 1000
            dy = (fy - self._fix_y) // 1000
            m = self._since_fix_um // 1000
            if m > 300 and -4000 < dx < 4000 and -4000 < dy < 4000:
                seen = isqrt(dx * dx + dy * dy)
                r = self.scale_q14 * seen // m
                if r < _SCALE_MIN:
                    r = _SCALE_MIN
                elif r > _SCALE_MAX:
                    r = _SCALE_MAX
                self._scale_n += 1
                self.scale_q14 += (r - self.scale_q14) // (2 if self._scale_n > 1 else 1)
            self.heading_urad += wrap(fh - self.heading_urad) >> 2
        else:
            self.heading_urad = fh
            self.vo_ok = True
        self.fix_dx_um = fx - self.x_um
        self.fix_dy_um = fy - self.y_um
        self.x_um = fx
        self.y_um = fy
        self._fix_x = fx
        self._fix_y = fy
        self._since_fix_um = 0
        self.err_mm = _ERR_FIX_MM
        self.fixes += 1

    def along(self, dx_um, dy_um, h):
        # the component of (dx, dy) along heading h, um at mm resolution (corrections)
        return (((dx_um // 1000) * cos_q14(h) + (dy_um // 1000) * sin_q14(h)) >> 14) * 1000
