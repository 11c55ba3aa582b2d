# Plant model of a six-wheeled rover on regolith, for the sim HAL.
#
# MicroPython-compatible and deterministic for a seed (its own LCG; no `random`).
# Wheels 0-2 are the left side front to rear, 3-5 the right side. The firmware
# sees the plant only through the HAL: PWM duty in, encoder counts, motor
# currents, IMU (pitch, roll, yaw rate), a hazard sensor, battery and solar out.
#
# Model, per wheel: a DC motor whose free speed is proportional to duty, with a
# first-order lag and a speed drop under load (slope); current = no-load current
# plus the stall current times the torque fraction. Faults: JAM (wheel locked,
# high current, drags its side), OPEN_CIRCUIT (no current, no torque: rolls with
# its side), ENCODER_DEAD (counts freeze, motor still turns). Body: skid steering,
# each side moves at the weighted mean of its powered wheels; a jammed wheel
# drags with a small weight; coasting wheels follow the ground.
# Terrain: a commanded slope under the rover (pitch) and rocks on the ground;
# the hazard sensor reports the tallest rock in a corridor ahead.
# Power: battery (Wh) charged by solar (sun 0..1) and drained by the avionics,
# the motors, or the hibernation heater.
import math

from firmware_py.compat import const

_N = const(6)
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

VMAX_MPS = 0.1  # free wheel speed at full duty
TAU_S = 0.15  # motor lag
I_NOLOAD_A = 0.12
I_STALL_A = 3.2
LOAD_FLAT = 0.08  # fraction of the free speed lost to rolling resistance
JAM_DRAG = 0.1  # a locked wheel's weight in its side's ground speed
SKID_EFF = 0.9  # yaw rate achieved by a skid-steer speed difference
TRACK_M = 1.0
SENSOR_RANGE_M = 2.0
CORRIDOR_M = 0.5
BUS_V = 12.0
AVIONICS_W = 4.0
HIBERNATE_W = 0.3
SOLAR_MAX_W = 40.0
REST_MPS = 0.0001  # below this the body counts as stopped


class Plant:
    def __init__(self, seed=1, counts_per_m=5000, battery_wh=100.0, soc=0.9):
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
        self.heading = 0.0  # rad, counter-clockwise from east
        self.v = 0.0
        self.vl = 0.0
        self.vr = 0.0
        self.omega = 0.0
        self.travelled = 0.0
        self.slope_deg = 0.0
        self.roll_deg = 0.0
        self.rocks = []  # (x, y, height_m)
        self.imu_stuck = False
        self.pitch_out = 0.0
        self.roll_out = 0.0
        self.gyro_out = 0.0
        self.battery_wh = battery_wh
        self.capacity_wh = battery_wh
        self.soc = soc
        self.sun = 1.0
        self.hibernating = False
        self.brown_out = False
        self.solar_w = 0.0
        self.load_w = 0.0
        self.temp_motor = 20.0
        self.temp_board = 25.0
        self.t_s = 0.0

    def _rand(self):
        # LCG (glibc constants), uniform in [-1, 1)
        self.seed = (self.seed * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.seed / 1073741824.0) - 1.0

    # -- faults and terrain (SIM_INJECT) --
    def set_wheel_fault(self, i, fault):
        self.fault[i] = fault

    def clear_faults(self):
        for i in range(_N):
            self.fault[i] = WHEEL_OK
        self.imu_stuck = False
        self.brown_out = False

    def add_rock_ahead(self, dist_m, height_m=0.3):
        c = math.cos(self.heading)
        s = math.sin(self.heading)
        self.rocks.append((self.x + c * dist_m, self.y + s * dist_m, height_m))

    def set_soc(self, pct):
        self.soc = max(0.0, min(1.0, pct / 100.0))

    def inject(self, fault, wheel, value):
        # SIM_INJECT's faults on the plant (F_CLEAR .. F_SUN), shared by the sim HAL
        # and the emulated Pico's pins.
        # False when a wheel fault names no wheel, or the fault is not the plant's
        # (HANG_TASK is the firmware's). A brown-out (value <= 0) sets `brown_out`:
        # whoever powers the board resets it.
        if fault == F_CLEAR:
            self.clear_faults()
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
            self.slope_deg = value
        elif fault == F_ROCK:
            self.add_rock_ahead(value)
        elif fault == F_SUN:
            self.sun = 0.0 if value < 0 else 1.0 if value > 1 else value
        else:
            return False
        return True

    # -- sensors --
    def obstacle(self):
        # (height_m, distance_m) of the tallest rock in the corridor ahead, or (0, 0)
        c = math.cos(self.heading)
        s = math.sin(self.heading)
        best_h = 0.0
        best_d = 0.0
        for r in self.rocks:
            dx = r[0] - self.x
            dy = r[1] - self.y
            ahead = dx * c + dy * s
            side = -dx * s + dy * c
            if 0.0 < ahead < SENSOR_RANGE_M and -CORRIDOR_M < side < CORRIDOR_M and r[2] > best_h:
                best_h = r[2]
                best_d = ahead
        return best_h, best_d

    # -- time step --
    def at_rest(self):
        # No wheel powered and the body (nearly) stopped: nothing in step() then
        # needs a short step (the lag and skid terms are idle), so the sim HAL
        # integrates an idle rover in long steps.
        if self.enabled:
            for d in self.duty:
                if d != 0.0:
                    return False
        return -REST_MPS < self.vl < REST_MPS and -REST_MPS < self.vr < REST_MPS

    def step(self, dt):
        # dt: seconds, up to 0.1 while the wheels are driven (the motor lag is
        # integrated exactly for a constant duty, so the step length barely shows)
        self.t_s += dt
        slope = math.radians(self.slope_deg)
        load = LOAD_FLAT + 0.6 * math.sin(slope) * (1.0 if self.v >= 0 else -1.0)
        k = 1.0 - math.exp(-dt / TAU_S)
        motor_w = 0.0
        for i in range(_N):
            f = self.fault[i]
            d = self.duty[i] if self.enabled else 0.0
            if f == WHEEL_JAM:
                self.speed[i] = 0.0
                self.current[i] = I_NOLOAD_A + I_STALL_A * abs(d) if d != 0.0 else 0.0
            elif f == WHEEL_OPEN or d == 0.0:
                self.current[i] = 0.0  # coasting: the speed follows its side below
            else:
                target = d * VMAX_MPS
                drop = load * VMAX_MPS if target > 0 else -load * VMAX_MPS
                if abs(drop) > abs(target):
                    drop = target
                self.speed[i] += (target - drop - self.speed[i]) * k
                torque = (target - self.speed[i]) / VMAX_MPS
                self.current[i] = I_NOLOAD_A + I_STALL_A * abs(torque)
            motor_w += BUS_V * self.current[i] * abs(d)
        # side ground speeds
        vl = self.vl = self._side(0, dt)
        vr = self.vr = self._side(3, dt)
        self.v = (vl + vr) * 0.5
        self.omega = (vr - vl) / TRACK_M * SKID_EFF
        # coasting and open wheels roll with their side; encoders
        for i in range(_N):
            f = self.fault[i]
            side_v = vl if i < 3 else vr
            if f == WHEEL_OPEN or (f != WHEEL_JAM and (self.duty[i] == 0.0 or not self.enabled)):
                self.speed[i] = side_v
            self.enc_pos[i] += self.speed[i] * dt * self.counts_per_m
            if f != WHEEL_ENC_DEAD:
                self.enc_out[i] = int(self.enc_pos[i])
        # body
        h = self.heading + self.omega * dt * 0.5
        self.x += self.v * math.cos(h) * dt
        self.y += self.v * math.sin(h) * dt
        self.heading += self.omega * dt
        self.travelled += abs(self.v) * dt
        # IMU
        if not self.imu_stuck:
            self.pitch_out = self.slope_deg + 0.2 * self._rand()
            self.roll_out = self.roll_deg + 0.2 * self._rand()
            self.gyro_out = self.omega + 0.0005 * self._rand()
        # power
        self.solar_w = SOLAR_MAX_W * self.sun
        self.load_w = HIBERNATE_W if self.hibernating else AVIONICS_W + motor_w
        self.soc += (self.solar_w - self.load_w) * dt / 3600.0 / self.capacity_wh
        if self.soc > 1.0:
            self.soc = 1.0
        elif self.soc < 0.0:
            self.soc = 0.0
        self.temp_motor += (20.0 + 0.01 * motor_w * 100.0 - self.temp_motor) * dt / 300.0
        self.temp_board += (25.0 + (0.0 if self.hibernating else 5.0) - self.temp_board) * dt / 600.0

    def _side(self, first, dt):
        num = 0.0
        den = 0.0
        for i in range(first, first + 3):
            f = self.fault[i]
            if f == WHEEL_JAM:
                den += JAM_DRAG
            elif f != WHEEL_OPEN and self.enabled and self.duty[i] != 0.0:
                num += self.speed[i]
                den += 1.0
        prev = self.vl if first == 0 else self.vr
        if den == 0.0:
            # nothing drives this side: regolith stops it quickly
            return prev * max(0.0, 1.0 - dt / 0.1)
        return num / den

    def battery_v(self):
        return 10.8 + 1.8 * self.soc
