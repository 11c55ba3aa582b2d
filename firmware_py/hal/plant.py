# Plant model of a six-wheeled rover on lunar regolith, for the sim HAL and the
# emulated Pico's pins.
#
# MicroPython-compatible and deterministic for a seed (its own LCG; no `random`);
# allocates no lists or tuples per step. Wheels 0-2 are the left side front to
# rear, 3-5 the right side. The firmware sees the plant only through the HAL:
# PWM duty in; encoder counts, motor currents, IMU, hazard camera, visual-
# odometry fixes, battery, array and temperatures out. Truth for tests: x, y,
# heading (rad, counter-clockwise from east), v (m/s), travelled (m), pitch_deg,
# roll_deg, soc (0..1), sun_elev_deg, brownouts, powered.
#
# Figures (sources; "est." marks our estimates):
# - Yutu-2: 140 kg (CNSA's figure; 135 kg is also quoted), six powered wheels,
#   1.5 x 1.0 x 1.0 m, top speed 200 m/h, climbs 20 deg and 20 cm obstacles,
#   solar array, radioisotope heater unit, hibernates through the lunar night
#   (mission facts as published for Chang'e-4 / Yutu-2). Wheels 0.30 m across
#   and 0.15 m wide (as reported for the Chang'e-3 rover, Yutu-2's twin, in the
#   terramechanics literature; our reading, not an official figure); track 1.0 m
#   and front-to-rear axle 1.0 m (est. from the 1.5 x 1.0 m body); ground
#   clearance under the body 0.20 m (est.: the rated 20 cm obstacle).
# - Motors: free rim speed 0.1 m/s at full duty (the boards' wheel_free_speed),
#   first-order lag 0.15 s, 0.12 A no-load, 3.2 A stall at full duty (est., a
#   small geared DC motor at 12 V). Stall force per wheel 1.5 x its share of the
#   weight (est.: enough to climb 20 deg with slip to spare).
# - Regolith (a traction-slip model after Bekker/Wong terramechanics, reduced
#   to one curve): a driven wheel's drawbar coefficient at slip s is
#   MU_MAX * (1 - exp(-s / S0)), MU_MAX 0.5, S0 0.1 (est., for loose lunar soil,
#   friction angle ~35 deg); resistances, in units of one wheel's weight:
#   0.08 a rolling driven wheel, 0.2 an unpowered wheel pushed through the soil
#   (bulldozing), 0.4 a jammed wheel dragged (sliding friction), and the side's
#   weight times sin(pitch) (grade), plus the grade of a rock under a wheel.
#   A side shares its resistance R among its n working wheels: each must pull
#   c = R / n; slip s = -S0 ln(1 - c / MU_MAX); with c >= MU_MAX the side
#   cannot move and its wheels spin. So on the flat: 3 wheels slip 1.7 %;
#   2 wheels (one open) 4.5 %; 2 wheels and a jammed one dragged 8.2 %;
#   1 wheel (two open: it has a third of the side's traction) 32 % and falls
#   below 200 m/h even at full duty; 20 deg uphill on 3 wheels 18 %; 25 deg
#   uphill c = MU_MAX: it cannot climb. Encoders count rim rotation, so slip
#   makes wheel odometry over-read. ENCODER_DEAD stops the counts only.
# - Rocks: up to CLIMB_MAX_M (0.20 m, Yutu-2's rating) a wheel rides over the
#   rock (pitch/roll bump, and the rock's grade adds to its side's load: a
#   current bump); taller ones block the wheel (and, between the wheel lines,
#   the body): no ground motion towards them, wheels spin with high current.
# - Hazard camera: 0.3-3.0 m ahead of the front axle, a field the swept width
#   (track + one wheel width, 1.15 m) plus 0.3 m each side, rocks >= 5 cm;
#   up to 4, nearest first.
# - IMU: pitch/roll sigma 0.1 deg, gyro noise sigma 100 urad/s and a bias of
#   10-30 urad/s fixed per seed (est., MEMS class after calibration).
# - Visual odometry: a fix every 1.0 m of true travel and 0.5 s after the
#   rover comes to rest; error a random walk, sigma 0.3 % of the distance since
#   the previous fix per axis, 0.05 deg per fix in heading.
# - Sun: synodic day 29.530589 d; the Chang'e-4 site at 45.44 S; the Sun's
#   declination taken as 0 (the Moon's axis is tilted 1.54 deg), so day and
#   night are 14.77 d each and sin(elevation) = cos(lat) cos(hour angle). The
#   array (40 W peak, est.) is pointed at the noon Sun: output 40 W * cos(hour
#   angle) while the Sun is up.
# - Battery: Li-ion, 240 Wh (est.), 10.8-12.6 V with the charge, charge
#   efficiency 0.95 (est.). Loads: avionics 4 W awake (est.), motors from their
#   currents at 12 V, hibernation 0.1 W (wake timer and charge regulator, est.),
#   survival heaters. At 0 % charge the board browns out and stays off until
#   the array has brought the battery back to REPOWER_SOC (5 %, the power
#   unit's under-voltage lockout, est.).
# - Thermal, the warm electronics box: heat capacity 4000 J/K (est.), linear
#   conductance to its sink: by night 0.05 W/K (insulation, radiator closed;
#   est.) to the night surface at -190 C (Chang'e-4's first lunar night,
#   CNSA 2019), by day 0.5 W/K (radiator open; est.) to a sink from -30 C at
#   sunrise to +30 C at noon (est.). RHU heat 7.5 W into the box by night
#   (est.; Yutu-2 carries a Pu-238 radioisotope heater unit, its power not
#   published; by day the loop that carries it in is closed). Survival heaters
#   (when armed by heater(True)) hold the box at -35 C with up to 5 W (est.).
#   Night budget: without heaters the box settles at -190 + (7.5 + 0.1) / 0.05
#   = -38 C; armed heaters then draw 0.05 * 3 = 0.15 W, so a 14.77-day night
#   costs 0.1 W * 354 h + 0.15 W * (354 h - cooling time) ~ 80 Wh, a third of
#   the battery. Motors: 300 J/K, 0.3 W/K to the same sink, half their
#   electrical power as heat (est.).
# Everything is integrated exactly over long steps (closed forms per chunk of
# at most CHUNK_S), so a hibernating rover can be stepped an hour at a time.
import math

from firmware_py.compat import const

_N = const(6)
_HAZ = const(4)
WHEEL_OK = const(0)
WHEEL_JAM = const(1)
WHEEL_OPEN = const(2)
WHEEL_ENC_DEAD = const(3)
# SIM_INJECT fault codes (dictionary enum sim_fault)
F_CLEAR = const(0)
F_JAM = const(1)
F_OPEN = const(2)
F_ENC = const(3)
F_IMU = const(4)
F_BROWN = const(5)
F_SLOPE = const(6)
F_ROCK = const(7)
F_SUN = const(8)
F_HANG = const(9)  # the firmware's, not the plant's
# SIM_INJECT's rocks: ROCK_AHEAD_M's distance is ahead of the front axle (what the hazard
# camera reports), ROCK_DIST_M's ahead of the rover's centre (as Plant.add_rock)
F_ROCK_H = const(10)  # a rock of `value` m at rock_dist_m ahead, rock_lat_m left
F_ROCK_LAT = const(11)  # lateral offset (m, + left) of the rocks placed next
F_ROLL = const(12)  # roll under the rover, deg (+ left side up)
F_ROCK_DIST = const(13)  # distance (m, from the centre) of the rocks placed next by ROCK_HEIGHT_M
F_TERRAIN = const(14)  # seeded terrain (value: the seed; 0 flat)

# geometry
WHEEL_R_M = 0.15
WHEEL_W_M = 0.15
TRACK_M = 1.0
BASE_M = 1.0  # front to rear axle
FRONT_M = 0.5  # front axle ahead of the body centre
CLIMB_MAX_M = 0.20
ROCK_DIST_DEFAULT_M = 2.5  # SIM_INJECT ROCK_HEIGHT_M: 2 m ahead of the front axle
WX = (0.5, 0.0, -0.5, 0.5, 0.0, -0.5)  # wheel positions, body frame (m, + ahead)
WY = (0.5, 0.5, 0.5, -0.5, -0.5, -0.5)  # (m, + left)
WHEEL_REACH_M = 0.75  # the farthest wheel centre from the body centre, and a margin
_SENSE_ORDER = (0, 2, 1, 3, 5, 4)  # corner wheels before the middle ones
MASS_KG = 140.0
G_MOON = 1.62
# motors
VMAX_MPS = 0.1  # free rim speed at full duty
TAU_S = 0.15  # motor lag
I_NOLOAD_A = 0.12
I_STALL_A = 3.2
F_STALL = 1.5  # stall force per wheel / its share of the weight
# regolith
MU_MAX = 0.5
SLIP_S0 = 0.1
C_ROLL = 0.08
C_FREE = 0.2
MU_JAM = 0.4
SKID_EFF = 0.9  # yaw rate achieved by a skid-steer speed difference
REST_MPS = 0.0001  # below this the body counts as stopped
# hazard camera
CAM_NEAR_M = 0.3
CAM_FAR_M = 3.0
CAM_MIN_H_M = 0.05
CAM_HALF_M = (TRACK_M + WHEEL_W_M) * 0.5 + 0.3
SWEPT_HALF_M = (TRACK_M + WHEEL_W_M) * 0.5
# sensors
IMU_SIGMA_DEG = 0.1
GYRO_SIGMA = 100e-6  # rad/s
GYRO_BIAS = 20e-6  # rad/s, +-50 % per seed
VO_STEP_M = 1.0
VO_REST_S = 0.5
VO_SIGMA_POS = 0.003  # of the distance since the previous fix
VO_SIGMA_H_DEG = 0.05
# Sun and power
SYNODIC_S = 29.530589 * 86400.0
SITE_LAT_DEG = -45.44
SOLAR_PEAK_W = 40.0
BATTERY_WH = 240.0
CHARGE_EFF = 0.95
BUS_V = 12.0
AVIONICS_W = 4.0
HIBERNATE_W = 0.1
REPOWER_SOC = 0.05
# thermal
C_BOARD = 4000.0  # J/K
G_NIGHT = 0.05  # W/K
G_DAY = 0.5
T_NIGHT_C = -190.0
T_SINK_SUNRISE_C = -30.0
T_SINK_NOON_C = 30.0
RHU_W = 7.5
T_SURVIVE_C = -35.0
HEATER_MAX_W = 5.0
C_MOTOR = 300.0
G_MOTOR = 0.3
MOTOR_LOSS = 0.5
CHUNK_S = 600.0  # longest step of the power/thermal closed forms (the Sun moves 7 deg/day)
DRIVE_STEP_S = 0.1  # longest step while the wheels move
POWER_STEP_S = 1.0  # power and thermal are integrated over at least this much
# The ground under the wheels, the rocks and the camera are looked up again only after the
# body has moved SENSE_M or turned SENSE_RAD (every few control periods at 200 m/h: the
# lookups are most of a step's cost); a wheel stops BLOCK_M short of a rock it cannot climb.
SENSE_M = 0.008
SENSE_RAD = 0.004
BLOCK_M = 0.02


class Plant:
    def __init__(self, seed=1, counts_per_m=5000, battery_wh=BATTERY_WH, soc=0.9):
        self.seed = seed & 0x7FFFFFFF or 1
        self.counts_per_m = counts_per_m
        self.duty = [0.0] * _N
        self.speed = [0.0] * _N  # wheel rim speed, m/s
        self.fault = [WHEEL_OK] * _N
        self.enc_pos = [0.0] * _N  # counts, as float
        self.enc_out = [0] * _N  # what the encoder reports
        self.current = [0.0] * _N
        self.enabled = False  # motor drivers' standby pin
        self.x = 0.0
        self.y = 0.0
        self.heading = 0.0
        self.v = 0.0
        self.vl = 0.0
        self.vr = 0.0
        self.omega = 0.0
        self.travelled = 0.0
        self.slip = [0.0, 0.0]  # per side, last step
        # terrain and attitude
        # terrain (firmware_py.hal.terrain, imported when first needed: rocks or a
        # seed; a flat plain or a uniform slope needs only the plane's gradient)
        self.terrain = None
        self._gx = 0.0
        self._gy = 0.0
        self._plane_v = 0
        self._plane_pitch = 0.0
        self._plane_roll = 0.0
        self.rock_dist_m = ROCK_DIST_DEFAULT_M
        self.rock_lat_m = 0.0
        self.pitch_deg = 0.0
        self.roll_deg = 0.0
        self._pitch_g = 0.0  # ground pitch without rocks, rad (the load)
        self._sin_pg_at = 0.0  # _pitch_g for which _sin_pg = 3 sin(_pitch_g) was computed
        self._sin_pg = 0.0
        self._k_dt = 0.0  # the step for which _k = 1 - exp(-dt / TAU_S) was computed
        self._k = 0.0
        self._zg = [0.0] * _N
        self._zb = [0.0] * _N
        self._grade = [0.0] * _N
        self._key_x = 1e9
        self._key_y = 0.0
        self._key_h = 0.0
        self._key_v = -1
        self.blocked_fwd = False
        self.blocked_back = False
        self.haz_n = 0
        self.haz_h = [0.0] * _HAZ
        self.haz_d = [0.0] * _HAZ
        self.haz_lat = [0.0] * _HAZ
        self.haz_w = [0.0] * _HAZ
        self.obstacle_h = 0.0
        self.obstacle_d = 0.0
        # sensors
        self.imu_stuck = False
        self.pitch_out = 0.0
        self.roll_out = 0.0
        self.gyro_out = 0.0
        self.gyro_bias = GYRO_BIAS * (1.0 + 0.5 * self._rand())
        self.vo_seq = 0
        self.vo_x = 0.0
        self.vo_y = 0.0
        self.vo_h = 0.0
        self._vo_ex = 0.0
        self._vo_ey = 0.0
        self._vo_eh = 0.0
        self._vo_d = 0.0
        self._vo_rest = 0.0
        self._vo_moved = False
        # power and thermal
        self.capacity_wh = battery_wh  # battery_wh: the same (a property)
        self.soc = soc
        self.powered = True
        self.brownouts = 0
        self.brown_out = False  # a SIM_INJECT brown-out: whoever powers the board resets it
        self.hibernating = False
        self.heater_armed = False
        self.heater_w = 0.0
        self.lunar_s = 0.0  # since local noon
        self.sun = 1.0  # array output, fraction of peak
        self.sun_elev_deg = 0.0
        self.solar_w = 0.0
        self.load_w = 0.0
        self.motor_w = 0.0
        self._acc_s = 0.0
        self._acc_motor_j = 0.0
        self.temp_motor = 20.0
        self.temp_board = 25.0
        self.t_s = 0.0
        self._mid_elev = 0.0
        self._mid_w = 0.0
        self._sun_at(0.0)

    def _rand(self):
        # LCG (glibc constants), uniform in [-1, 1)
        self.seed = (self.seed * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.seed / 1073741824.0) - 1.0

    def _gauss(self):
        # approximately normal, sigma 1 (three uniforms of variance 1/3): _rand() x 3, inline
        s = (self.seed * 1103515245 + 12345) & 0x7FFFFFFF
        a = (s / 1073741824.0) - 1.0
        s = (s * 1103515245 + 12345) & 0x7FFFFFFF
        a += (s / 1073741824.0) - 1.0
        s = (s * 1103515245 + 12345) & 0x7FFFFFFF
        self.seed = s
        return a + ((s / 1073741824.0) - 1.0)

    # -- faults and terrain (SIM_INJECT and tests) --
    def set_wheel_fault(self, i, fault):
        self.fault[i] = fault
        if fault == WHEEL_JAM:
            self.speed[i] = 0.0  # stops at once (the next step would stop it anyway)

    def clear_faults(self):
        for i in range(_N):
            self.fault[i] = WHEEL_OK
        self.imu_stuck = False
        self.brown_out = False

    def add_rock(self, x_m_ahead, lateral_m, height_m, width_m=None):
        # a rock x_m_ahead of the rover's position (its body centre) along its
        # heading, lateral_m to its left; width 2 x height unless given
        if width_m is None:
            width_m = height_m * 2.0
        c = math.cos(self.heading)
        s = math.sin(self.heading)
        self._world().add_rock(self.x + c * x_m_ahead - s * lateral_m, self.y + s * x_m_ahead + c * lateral_m,
                               height_m, width_m)

    def add_rock_ahead(self, dist_m, height_m=0.3):
        # a rock dist_m ahead of the front axle (as the hazard camera measures:
        # SIM_INJECT's distances), rock_lat_m to the left
        self.add_rock(FRONT_M + dist_m, self.rock_lat_m, height_m)

    def clear_rocks(self):
        if self.terrain is not None:
            self.terrain.clear_rocks()

    def _world(self):
        if self.terrain is None:
            from firmware_py.hal.terrain import Terrain

            self.terrain = Terrain(0)
        return self.terrain

    def set_slope(self, pitch_deg, roll_deg=0.0):
        # a uniform slope under the rover from here on: pitch along its heading now
        # (+ nose up driving forward), roll across it (+ left side up)
        self._plane_pitch = pitch_deg
        self._plane_roll = roll_deg
        tp = math.tan(math.radians(pitch_deg))
        tr = math.tan(math.radians(roll_deg))
        c = math.cos(self.heading)
        s = math.sin(self.heading)
        self._gx = tp * c - tr * s
        self._gy = tp * s + tr * c
        self._plane_v += 1
        self._sense()

    @property
    def battery_wh(self):
        # the battery's capacity, Wh (settable: a smaller battery for a test)
        return self.capacity_wh

    @battery_wh.setter
    def battery_wh(self, wh):
        self.capacity_wh = wh

    @property
    def slope_deg(self):
        return self._plane_pitch

    @slope_deg.setter
    def slope_deg(self, value):
        self.set_slope(value, self._plane_roll)

    def set_terrain(self, seed, k=None):
        # seeded terrain (undulation, craters, rocks; terrain.py); k: rock abundance
        if seed or self.terrain is not None:
            self._world().set_seed(seed, k)
        self._sense()

    def clear_terrain(self):
        # flat again: no seeded terrain, no plane, no placed rocks
        if self.terrain is not None:
            self.terrain.set_seed(0)
            self.terrain.clear_rocks()
        self.set_slope(0.0, 0.0)

    def set_soc(self, pct):
        self.soc = max(0.0, min(1.0, pct / 100.0))

    def set_sun(self, level):
        # The lunar afternoon when the array gives `level` of its peak (1: noon,
        # 0: sunset, the night follows).
        level = 0.0 if level < 0 else 1.0 if level > 1 else level
        self.set_lunar_time(math.acos(level) / (2.0 * math.pi) * SYNODIC_S)

    def set_lunar_time(self, s_since_noon):
        self.lunar_s = s_since_noon % SYNODIC_S
        self._sun_at(self.lunar_s)

    def heater(self, on):
        self.heater_armed = bool(on)

    def inject(self, fault, wheel, value):
        # SIM_INJECT's faults on the plant, shared by the sim HAL and the emulated
        # Pico's pins. False when a wheel fault names no wheel, or the fault is not
        # the plant's (HANG_TASK is the firmware's). A brown-out (value <= 0) sets
        # `brown_out`: whoever powers the board resets it.
        if fault == F_CLEAR:
            self.clear_faults()
            self.rock_dist_m = ROCK_DIST_DEFAULT_M
            self.rock_lat_m = 0.0
        elif fault in (F_JAM, F_OPEN, F_ENC):
            if not 1 <= wheel <= 6:
                return False
            kind = WHEEL_JAM if fault == F_JAM else WHEEL_OPEN if fault == F_OPEN else WHEEL_ENC_DEAD
            self.set_wheel_fault(wheel - 1, WHEEL_OK if value < 0 else kind)  # < 0 clears it
        elif fault == F_IMU:
            self.imu_stuck = value >= 0
        elif fault == F_BROWN:
            if value > 0:
                self.set_soc(value)
            else:
                self.brown_out = True
        elif fault == F_SLOPE:
            self.set_slope(value, self._plane_roll)
        elif fault == F_ROLL:
            self.set_slope(self._plane_pitch, value)
        elif fault == F_ROCK:
            self.add_rock(FRONT_M + value, self.rock_lat_m, 0.3)
        elif fault == F_ROCK_H:
            if value <= 0:
                self.clear_rocks()
            else:
                self.add_rock(self.rock_dist_m, self.rock_lat_m, value)
        elif fault == F_ROCK_LAT:
            self.rock_lat_m = value
        elif fault == F_ROCK_DIST:
            self.rock_dist_m = value
        elif fault == F_TERRAIN:
            if value > 0:
                self.set_terrain(int(value))
            else:
                self.clear_terrain()
        elif fault == F_SUN:
            self.set_sun(value)
        else:
            return False
        self._key_v = -1
        return True

    # -- sensors --
    def obstacle(self):
        # (height_m, distance_m) of the tallest rock the camera sees, or (0, 0)
        return self.obstacle_h, self.obstacle_d

    def battery_v(self):
        return 10.8 + 1.8 * self.soc

    def _sense(self):
        # Attitude from the ground under the six wheels, blocking rocks and the
        # hazard camera: recomputed only when the pose or the terrain has changed.
        t = self.terrain
        ver = self._plane_v
        if t is not None:
            t.refresh(self.x, self.y)
            ver += t.version << 16
        if (
            ver == self._key_v
            and -SENSE_M < self.x - self._key_x < SENSE_M
            and -SENSE_M < self.y - self._key_y < SENSE_M
            and -SENSE_RAD < self.heading - self._key_h < SENSE_RAD
        ):
            return
        self._key_v = ver
        self._key_x = self.x
        self._key_y = self.y
        self._key_h = self.heading
        c = math.cos(self.heading)
        s = math.sin(self.heading)
        dirn = 1.0 if self.vl + self.vr >= 0.0 else -1.0
        zg = self._zg
        zb = self._zb
        gr = self._grade
        ux = c * dirn
        uy = s * dirn
        gx = self._gx
        gy = self._gy
        if t is not None:
            t.select_near(self.x, self.y, WHEEL_REACH_M)
        for i in _SENSE_ORDER:
            wx = self.x + WX[i] * c - WY[i] * s
            wy = self.y + WX[i] * s + WY[i] * c
            g = gx * wx + gy * wy
            if t is None:
                zg[i] = g
                zb[i] = g
                gr[i] = 0.0
                continue
            if i == 1 or i == 4:
                # a middle wheel: the smooth undulation halfway between its
                # neighbours' (looked up first)
                g += zg[i]
            else:
                b = t.base(wx, wy)
                if i == 0 or i == 3:
                    zg[i + 1] = b * 0.5
                else:
                    zg[i - 1] += b * 0.5
                g += b
            g += t.craters(wx, wy)
            t.wheel(wx, wy, ux, uy, CLIMB_MAX_M)
            zg[i] = g
            zb[i] = g + t.bump
            gr[i] = t.grade
        self._pitch_g = math.atan2((zg[0] + zg[3] - zg[2] - zg[5]) * 0.5, BASE_M)
        self.pitch_deg = math.degrees(math.atan2((zb[0] + zb[3] - zb[2] - zb[5]) * 0.5, BASE_M))
        self.roll_deg = math.degrees(math.atan2((zb[0] + zb[1] + zb[2] - zb[3] - zb[4] - zb[5]) / 3.0, TRACK_M))
        # rocks near the rover: blocking and the camera
        fwd = False
        back = False
        n = 0
        hh = self.haz_h
        hd = self.haz_d
        hl = self.haz_lat
        hw = self.haz_w
        for k in range(t.nr if t is not None else 0):
            ex = t.rx[k] - self.x
            ey = t.ry[k] - self.y
            a = ex * c + ey * s
            lat = -ex * s + ey * c
            h = t.rh[k]
            w = t.rw[k]
            if h > CLIMB_MAX_M and (lat if lat > 0 else -lat) - w * 0.5 < SWEPT_HALF_M:
                # only a rock whose centre lies beyond an axle blocks that way
                if a > FRONT_M and a - w * 0.5 - FRONT_M - WHEEL_R_M < BLOCK_M:
                    fwd = True
                elif a < -FRONT_M and -a - w * 0.5 - FRONT_M - WHEEL_R_M < BLOCK_M:
                    back = True
            d = a - FRONT_M
            if h >= CAM_MIN_H_M and CAM_NEAR_M <= d <= CAM_FAR_M and (lat if lat > 0 else -lat) - w * 0.5 <= CAM_HALF_M:
                # insert, nearest first, keeping _HAZ
                j = n if n < _HAZ else _HAZ
                while j > 0 and hd[j - 1] > d:
                    if j < _HAZ:
                        hh[j] = hh[j - 1]
                        hd[j] = hd[j - 1]
                        hl[j] = hl[j - 1]
                        hw[j] = hw[j - 1]
                    j -= 1
                if j < _HAZ:
                    hh[j] = h
                    hd[j] = d
                    hl[j] = lat
                    hw[j] = w
                    if n < _HAZ:
                        n += 1
        self.haz_n = n
        best_h = 0.0
        best_d = 0.0
        for j in range(n):
            if hh[j] > best_h:
                best_h = hh[j]
                best_d = hd[j]
        self.obstacle_h = best_h
        self.obstacle_d = best_d
        self.blocked_fwd = fwd
        self.blocked_back = back

    # -- time step --
    def at_rest(self):
        # No wheel powered and the body (nearly) stopped: step() may then take
        # long steps (the lag and skid terms are idle).
        if self.enabled and self.powered:
            for d in self.duty:
                if d != 0.0:
                    return False
        return -REST_MPS < self.vl < REST_MPS and -REST_MPS < self.vr < REST_MPS

    def step(self, dt):
        # Advance by dt seconds, any length: split into drive steps of at most
        # DRIVE_STEP_S while anything moves, power/thermal chunks of CHUNK_S at rest.
        if 1e-9 < dt <= DRIVE_STEP_S:
            self._step(dt)  # one control period: one step, moving or not
            return
        while dt > 1e-9:
            h = CHUNK_S if self.at_rest() else DRIVE_STEP_S
            if h > dt:
                h = dt
            self._step(h)
            dt -= h

    def _step(self, dt):
        self.t_s += dt
        self._sense()
        if dt != self._k_dt:  # the lag's gain over dt (a fixed-rate loop steps one dt)
            self._k_dt = dt
            self._k = 1.0 - math.exp(-dt / TAU_S)
        k = self._k
        on = self.enabled and self.powered
        duty = self.duty
        # pushing into a rock too tall to climb: both sides driven towards it (a
        # turn in place is not blocked: rocks are checked against translation only)
        bf = self.blocked_fwd
        bb = self.blocked_back
        push = False
        if on and (bf or bb):
            dl = duty[0] + duty[1] + duty[2]
            dr = duty[3] + duty[4] + duty[5]
            push = (bf and dl > 0 and dr > 0) or (bb and dl < 0 and dr < 0)
        self._side(0, dt, k, on, push)
        self._side(3, dt, k, on, push)
        vl = self.vl
        vr = self.vr
        v = (vl + vr) * 0.5
        if (bf and v > 0.0) or (bb and v < 0.0):
            # a rock too tall to climb holds the body; it may still turn in place
            vl -= v
            vr -= v
            self.vl = vl
            self.vr = vr
            v = 0.0
        self.v = v
        omega = self.omega = (vr - vl) / TRACK_M * SKID_EFF
        # encoders and motor power
        motor_w = 0.0
        enc_pos = self.enc_pos
        enc_out = self.enc_out
        speed = self.speed
        fault = self.fault
        current = self.current
        cpm = self.counts_per_m
        for i in range(_N):
            e = enc_pos[i] + speed[i] * dt * cpm
            enc_pos[i] = e
            if fault[i] != WHEEL_ENC_DEAD:
                enc_out[i] = int(e)
            if on:
                d = duty[i]
                motor_w += BUS_V * current[i] * (d if d > 0 else -d)
        self.motor_w = motor_w
        # body
        heading = self.heading
        h = heading + omega * dt * 0.5
        self.x += v * math.cos(h) * dt
        self.y += v * math.sin(h) * dt
        self.heading = heading + omega * dt
        dist = (v if v > 0 else -v) * dt
        self.travelled += dist
        # IMU
        if not self.imu_stuck:
            # three _gauss() draws, the LCG inline (the same sequence)
            s = self.seed
            s = (s * 1103515245 + 12345) & 0x7FFFFFFF
            a = (s / 1073741824.0) - 1.0
            s = (s * 1103515245 + 12345) & 0x7FFFFFFF
            a += (s / 1073741824.0) - 1.0
            s = (s * 1103515245 + 12345) & 0x7FFFFFFF
            self.pitch_out = self.pitch_deg + IMU_SIGMA_DEG * (a + ((s / 1073741824.0) - 1.0))
            s = (s * 1103515245 + 12345) & 0x7FFFFFFF
            a = (s / 1073741824.0) - 1.0
            s = (s * 1103515245 + 12345) & 0x7FFFFFFF
            a += (s / 1073741824.0) - 1.0
            s = (s * 1103515245 + 12345) & 0x7FFFFFFF
            self.roll_out = self.roll_deg + IMU_SIGMA_DEG * (a + ((s / 1073741824.0) - 1.0))
            s = (s * 1103515245 + 12345) & 0x7FFFFFFF
            a = (s / 1073741824.0) - 1.0
            s = (s * 1103515245 + 12345) & 0x7FFFFFFF
            a += (s / 1073741824.0) - 1.0
            s = (s * 1103515245 + 12345) & 0x7FFFFFFF
            self.seed = s
            self.gyro_out = omega + self.gyro_bias + GYRO_SIGMA * (a + ((s / 1073741824.0) - 1.0))
        self._vo(dt, dist)
        # power and thermal: integrated (exactly, for the mean motor power) once
        # POWER_STEP_S of steps has gathered, so a 20-50 Hz loop pays for it once a second
        acc_s = self._acc_s + dt
        self._acc_motor_j += motor_w * dt
        if acc_s >= POWER_STEP_S:
            self._power(acc_s, self._acc_motor_j / acc_s)
            acc_s = 0.0
            self._acc_motor_j = 0.0
        self._acc_s = acc_s

    def _side(self, first, dt, k, on, push):
        # One side's ground speed (vl or vr), its wheels' rim speeds and currents.
        n = 0
        dsum = 0.0
        resist = 0.0
        climb = 0.0
        fault = self.fault
        duty = self.duty
        grade = self._grade
        last = first + 3
        for i in range(first, last):
            f = fault[i]
            d = duty[i] if on else 0.0
            climb += grade[i]
            if f == WHEEL_JAM:
                resist += MU_JAM
            elif f == WHEEL_OPEN or d == 0.0:
                resist += C_FREE
            else:
                resist += C_ROLL
                n += 1
                dsum += d
        prev = self.vl if first == 0 else self.vr
        if n == 0:
            # nothing drives this side: regolith stops it quickly
            vs = prev * (1.0 - dt / 0.1) if dt < 0.1 else 0.0
            slip = 0.0
            stuck = False
            u = 0.0
            rim_t = 0.0
        else:
            u = dsum / n * VMAX_MPS  # mean commanded rim speed
            dirn = 1.0 if u > 0 else -1.0
            pg = self._pitch_g
            if pg != self._sin_pg_at:
                self._sin_pg_at = pg
                self._sin_pg = 3.0 * math.sin(pg)
            c = (resist + dirn * (self._sin_pg + climb)) / n
            stuck = push or c >= MU_MAX
            if stuck:
                c = MU_MAX
                slip = 1.0
            elif c > -MU_MAX:
                slip = -SLIP_S0 * math.log(1.0 - (c if c > 0 else -c) / MU_MAX)
                if c < 0:
                    slip = -slip  # braking downhill: the ground runs ahead of the rims
            else:
                c = -MU_MAX + 1e-6
                slip = -0.9
            rim_t = u - dirn * c / F_STALL * VMAX_MPS
            if rim_t * dirn < 0:
                rim_t = 0.0  # the motors cannot turn the wheels against the load
            g_t = 0.0 if stuck else rim_t * (1.0 - slip) if slip >= 0 else rim_t / (1.0 + slip)
            vs = prev + (g_t - prev) * k
        if first == 0:
            self.vl = vs
            self.slip[0] = slip
        else:
            self.vr = vs
            self.slip[1] = slip
        speed = self.speed
        current = self.current
        for i in range(first, last):
            f = fault[i]
            d = duty[i] if on else 0.0
            if f == WHEEL_JAM:
                speed[i] = 0.0
                current[i] = I_NOLOAD_A + I_STALL_A * (d if d > 0 else -d) if d != 0.0 else 0.0
            elif f == WHEEL_OPEN or d == 0.0:
                speed[i] = vs  # rolls with its side
                current[i] = 0.0
            else:
                if stuck:
                    sp = speed[i]
                    sp += (rim_t - sp) * k
                elif slip >= 0:
                    sp = vs / (1.0 - slip)
                else:
                    sp = vs * (1.0 + slip)
                speed[i] = sp
                tq = (d * VMAX_MPS - sp) / VMAX_MPS
                if d < 0:
                    tq = -tq
                tq = 0.0 if tq < 0 else 1.0 if tq > 1 else tq
                current[i] = I_NOLOAD_A + I_STALL_A * tq

    def _vo(self, dt, dist):
        # Visual-odometry fixes: every VO_STEP_M of travel, and VO_REST_S after
        # the rover comes to rest.
        self._vo_d += dist
        moving = not (-REST_MPS < self.v < REST_MPS) or not (-1e-4 < self.omega < 1e-4)
        if moving:
            self._vo_moved = True
            self._vo_rest = 0.0
        else:
            self._vo_rest += dt
        if self._vo_d >= VO_STEP_M or (self._vo_moved and not moving and self._vo_rest >= VO_REST_S):
            sig = VO_SIGMA_POS * self._vo_d
            self._vo_ex += sig * self._gauss()
            self._vo_ey += sig * self._gauss()
            self._vo_eh += math.radians(VO_SIGMA_H_DEG) * self._gauss()
            self.vo_x = self.x + self._vo_ex
            self.vo_y = self.y + self._vo_ey
            self.vo_h = self.heading + self._vo_eh
            self.vo_seq += 1
            self._vo_d = 0.0
            self._vo_moved = False

    def _update_sun(self, dt):
        # The Sun at lunar_s + dt / 2 (the middle of a chunk, what _power
        # integrates with: _mid_elev, _mid_w), then lunar_s advanced by dt; sun,
        # solar_w, sun_elev_deg are left at the end.
        self._sun_at(self.lunar_s + dt * 0.5)
        self._mid_elev = self.sun_elev_deg
        self._mid_w = self.solar_w
        self.lunar_s = (self.lunar_s + dt) % SYNODIC_S
        self._sun_at(self.lunar_s)

    def _sun_at(self, s):
        ch = math.cos(2.0 * math.pi * s / SYNODIC_S)
        self.sun_elev_deg = math.degrees(math.asin(math.cos(math.radians(SITE_LAT_DEG)) * ch))
        self.sun = ch if ch > 0 else 0.0
        self.solar_w = SOLAR_PEAK_W * self.sun

    def _power(self, dt, motor_w):
        # Battery, board and motor temperatures over dt, in closed form.
        self._update_sun(dt)
        solar_w = self._mid_w
        day = self._mid_elev > 0.0
        if self.powered:
            load = HIBERNATE_W if self.hibernating else AVIONICS_W + motor_w
        else:
            load = 0.0
        self.load_w = load
        if day:
            g = G_DAY
            sink = T_SINK_SUNRISE_C + (T_SINK_NOON_C - T_SINK_SUNRISE_C) * solar_w / SOLAR_PEAK_W
            q = load - motor_w if self.powered and not self.hibernating else load
        else:
            g = G_NIGHT
            sink = T_NIGHT_C
            q = RHU_W + (load - motor_w if self.powered and not self.hibernating else load)
        heat_j = self._board_temp(dt, g, sink, q, self.heater_armed and self.powered)
        # battery
        net_wh = (solar_w * dt - load * dt - heat_j) / 3600.0
        if net_wh > 0:
            net_wh *= CHARGE_EFF
        soc = self.soc + net_wh / self.capacity_wh
        if soc >= 1.0:
            soc = 1.0
        elif soc <= 0.0:
            soc = 0.0
            if self.powered:
                self.powered = False
                self.brownouts += 1
                self.load_w = 0.0
        if not self.powered and soc >= REPOWER_SOC:
            self.powered = True
        self.soc = soc
        # motors: their own node, to the same sink
        tinf = sink + MOTOR_LOSS * motor_w / G_MOTOR
        self.temp_motor = tinf + (self.temp_motor - tinf) * math.exp(-dt * G_MOTOR / C_MOTOR)

    def _board_temp(self, dt, g, sink, q, armed):
        # The box: C dT/dt = q + heater - g (T - sink). With armed survival
        # heaters an ideal thermostat holds T_SURVIVE_C (up to HEATER_MAX_W).
        # Returns the heaters' energy, J.
        tau = C_BOARD / g
        tinf = sink + q / g
        t0 = self.temp_board
        e = 0.0
        if armed and tinf < T_SURVIVE_C:
            if t0 > T_SURVIVE_C:
                # cool freely until the thermostat's set point
                tc = tau * math.log((t0 - tinf) / (T_SURVIVE_C - tinf))
                if tc >= dt:
                    self.temp_board = tinf + (t0 - tinf) * math.exp(-dt / tau)
                    self.heater_w = 0.0
                    return 0.0
                dt -= tc
                t0 = T_SURVIVE_C
            need = g * (T_SURVIVE_C - tinf)
            if need <= HEATER_MAX_W and t0 >= T_SURVIVE_C - 1e-9:
                self.temp_board = T_SURVIVE_C
                self.heater_w = need
                return need * dt
            # below the set point: full heat, towards it
            tinf2 = tinf + HEATER_MAX_W / g
            if tinf2 > T_SURVIVE_C:
                tc = tau * math.log((tinf2 - t0) / (tinf2 - T_SURVIVE_C))
                if tc < dt:
                    self.temp_board = T_SURVIVE_C
                    self.heater_w = need
                    return HEATER_MAX_W * tc + need * (dt - tc)
            self.temp_board = tinf2 + (t0 - tinf2) * math.exp(-dt / tau)
            self.heater_w = HEATER_MAX_W
            return HEATER_MAX_W * dt
        self.heater_w = 0.0
        self.temp_board = tinf + (t0 - tinf) * math.exp(-dt / tau)
        return e
