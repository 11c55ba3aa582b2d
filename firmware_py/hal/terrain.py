# Terrain for the plant: a seeded lunar surface, cheap to look up at 20-50 Hz.
#
# MicroPython-compatible and deterministic for a seed (integer hashes, no
# `random`); infinite: every feature is drawn from a hash of (seed, cell), so no
# map is stored. Heights are in metres above a datum; the plant asks for the
# ground under each wheel and for the rocks near the rover.
#
# The surface is the sum of
# - a uniform plane (`set_plane`, from Plant.set_slope): gradient (gx, gy);
# - with a seed: value noise on a 5 m grid, +-0.15 m (gentle undulation,
#   slopes under ~5 deg; an estimate for a mare-like crater floor; Chang'e-4
#   itself landed on a 4 deg slope, Wu et al. 2021);
# - with a seed: small bowl craters 1-8 m across, depth/diameter 0.061 (the
#   mean measured at the Chang'e-4 site by Wu et al. 2021, EPSL 553, 116666),
#   bowl profile, steepest at the rim: atan(4 * 0.061) = 13.7 deg. Their
#   density is 10 % of Trask's lunar equilibrium N(>D) = 10**-1.1 * D**-2 per
#   m^2 (Trask 1966, Ranger VIII/IX; the 10 % is our estimate);
# - rocks: with a seed, drawn from the Golombek & Rapp (1997, JGR 102(E2),
#   4117-4129) model of the cumulative fractional area covered by rocks of
#   diameter >= D: F_k(D) = k * exp(-q(k) * D), q(k) = 1.79 + 0.152 / k. Rock
#   abundance at the Chang'e-4 site k = 0.0021 (0.21 %, Wu et al. 2021 from
#   Pancam images, agreeing with orbital estimates). The number density follows
#   from F: n(D) = -dN/dD = 4 q k exp(-q D) / (pi D^2) per m^2 per m. Rocks are
#   drawn with D in [0.1, 2.0] m (below 0.1 m they stand under 5 cm: no hazard,
#   no camera detection), Poisson per 4 m cell, D by rejection from exp(-qD)/D^2,
#   height = 0.5 * D (rocks stand about half as tall as they are wide, Golombek
#   et al. 2003, JGR 108(E12), 8086; our rounding). Plus rocks placed by
#   add_rock (tests, SIM_INJECT). At k = 0.21 % rocks of 5 cm or more are rare
#   (about 1 per 400 m^2): the Chang'e-4 site is smooth.
#
# Lookups touch only the features near the rover: `refresh(x, y)` rebuilds
# short local lists (rocks within LOCAL_M, craters reaching into it) when the
# rover has moved REFRESH_M since the last one, so a step scans a handful of
# entries, never the whole map.
import math
from array import array

from firmware_py.compat import const

ROCK_K_CE4 = 0.0021  # Chang'e-4 rock abundance (Wu et al. 2021)
ROCK_DMIN_M = 0.1
ROCK_DMAX_M = 2.0
ROCK_H_PER_D = 0.5
CRATER_DD = 0.061  # depth / diameter (Wu et al. 2021)
CRATER_DMIN_M = 1.0
CRATER_DMAX_M = 8.0
CRATER_EQ_FRACTION = 0.1  # of Trask's equilibrium density (estimate)
NOISE_CELL_M = 5.0
NOISE_AMP_M = 0.15
ROCK_CELL_M = 4.0
CRATER_CELL_M = 10.0
LOCAL_M = 4.0  # rocks within this (+ REFRESH_M) of the refresh centre are in the local list:
# the camera's field reaches 3.6 m from the body centre
REFRESH_M = 1.0
WHEEL_R_M = 0.15  # a wheel rides over a rock on a cosine bump this much wider than the rock
_MAX_ROCKS = const(64)
_MAX_CRATERS = const(16)
_MAX_USER = const(64)
_M30 = const(0x3FFFFFFF)


def _hash(seed, i, j):
    # a 30-bit hash of (seed, i, j), i and j any int (negative too)
    h = (seed * 0x9E3779B + i * 0x85EBCA7 + j * 0x2B2AE3D) & _M30
    h ^= h >> 15
    h = (h * 0x2C1B3C6) & _M30
    h ^= h >> 13
    h = (h * 0x297A2D3) & _M30
    h ^= h >> 16
    return h


def q_of_k(k):
    # Golombek & Rapp (1997): the exponent of the cumulative fractional area
    return 1.79 + 0.152 / k


def fractional_area(k, d_m):
    # F_k(D): fraction of the surface covered by rocks of diameter >= d_m
    return k * math.exp(-q_of_k(k) * d_m)


def rocks_per_m2(k, dmin=ROCK_DMIN_M, dmax=ROCK_DMAX_M, n=400):
    # number of rocks per m^2 with dmin <= D <= dmax (Simpson's rule on n(D))
    q = q_of_k(k)
    c = 4.0 * q * k / math.pi
    h = (dmax - dmin) / n
    s = 0.0
    for i in range(n + 1):
        d = dmin + i * h
        w = 1 if i == 0 or i == n else (4 if i & 1 else 2)
        s += w * math.exp(-q * d) / (d * d)
    return c * s * h / 3.0


class _Rng:
    # LCG (glibc constants) seeded from a hash; uniform in [0, 1)
    def __init__(self):
        self.s = 1

    def seed(self, s):
        self.s = s & 0x7FFFFFFF or 1

    def u(self):
        self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
        return self.s / 2147483648.0


class Terrain:
    def __init__(self, seed=0, k=ROCK_K_CE4):
        self.gx = 0.0  # plane gradient, m per m
        self.gy = 0.0
        self.user = []  # [x, y, height, width] placed by add_rock
        # local rocks and craters (centre, radius, depth): arrays, so the floats
        # stored in them are not heap objects of their own
        z = (0.0,)
        self.rx = array("d", z * _MAX_ROCKS)
        self.ry = array("d", z * _MAX_ROCKS)
        self.rh = array("d", z * _MAX_ROCKS)
        self.rw = array("d", z * _MAX_ROCKS)
        self.nr = 0
        self.cx = array("d", z * _MAX_CRATERS)
        self.cy = array("d", z * _MAX_CRATERS)
        self.cr = array("d", z * _MAX_CRATERS)
        self.cd = array("d", z * _MAX_CRATERS)
        self.nc = 0
        self._near = bytearray(_MAX_ROCKS)  # select_near(): indices into the rock lists
        self._nn = 0
        self.version = 0  # bumped when anything changes (the plant caches on it)
        self._rng = _Rng()
        self._at_x = 1e9
        self._at_y = 1e9
        self.bump = 0.0  # wheel(): height of the rocks under a wheel, m
        self.grade = 0.0  # ... and their slope along the direction given, m/m
        self.set_seed(seed, k)

    # -- configuration --
    def set_seed(self, seed, k=None):
        # seed 0: a flat plain (the plane alone) with no rocks of its own
        self.seed = seed & _M30
        if k is not None:
            self.k = k
        self._rock_lam = rocks_per_m2(self.k) * ROCK_CELL_M * ROCK_CELL_M if self.k > 0 else 0.0
        self._q = q_of_k(self.k) if self.k > 0 else 0.0
        a = CRATER_DMIN_M ** -2 - CRATER_DMAX_M ** -2
        self._crater_lam = CRATER_EQ_FRACTION * 10 ** -1.1 * a * CRATER_CELL_M * CRATER_CELL_M
        self._invalidate()

    def set_plane(self, gx, gy):
        self.gx = gx
        self.gy = gy
        self.version += 1

    def add_rock(self, x, y, height_m, width_m):
        if len(self.user) >= _MAX_USER:
            self.user.pop(0)
        self.user.append((x, y, height_m, width_m))
        self._invalidate()

    def clear_rocks(self):
        self.user = []
        self._invalidate()

    def _invalidate(self):
        self._at_x = 1e9
        self.version += 1

    # -- features of a cell (deterministic for the seed) --
    def cell_rocks(self, i, j, out):
        # Append (x, y, height, width) of the seeded rocks in rock cell (i, j) to
        # `out` (allocates: statistics only; refresh draws straight into its lists).
        self._draw(i, j, out.append)

    def _draw(self, i, j, sink):
        # sink((x, y, height, width)) for each seeded rock of rock cell (i, j)
        if not self.seed or self._rock_lam <= 0.0:
            return
        r = self._rng
        r.seed(_hash(self.seed, i, j))
        n = _poisson(r, self._rock_lam)
        dmin = ROCK_DMIN_M
        q = self._q
        for _ in range(n):
            while True:
                d = dmin - math.log(1.0 - r.u()) / q
                if d <= ROCK_DMAX_M and r.u() * d * d < dmin * dmin:
                    break
            x = (i + r.u()) * ROCK_CELL_M
            y = (j + r.u()) * ROCK_CELL_M
            sink((x, y, ROCK_H_PER_D * d, d))

    def _take(self, rk):
        # a rock into the local list if it reaches within LOCAL_M + REFRESH_M
        ex = rk[0] - self._at_x
        ey = rk[1] - self._at_y
        reach = LOCAL_M + REFRESH_M + rk[3] * 0.5
        n = self.nr
        if n < _MAX_ROCKS and ex * ex + ey * ey < reach * reach:
            self.rx[n] = rk[0]
            self.ry[n] = rk[1]
            self.rh[n] = rk[2]
            self.rw[n] = rk[3]
            self.nr = n + 1

    def _cell_craters(self, i, j):
        r = self._rng
        r.seed(_hash(self.seed ^ 0x2545F49, i, j))
        n = _poisson(r, self._crater_lam)
        a = CRATER_DMIN_M ** -2
        b = a - CRATER_DMAX_M ** -2
        for _ in range(n):
            d = (a - r.u() * b) ** -0.5
            x = (i + r.u()) * CRATER_CELL_M
            y = (j + r.u()) * CRATER_CELL_M
            yield x, y, d * 0.5, d * CRATER_DD

    # -- local lists --
    def refresh(self, x, y):
        # Rebuild the local lists around (x, y) when the rover has moved REFRESH_M
        # since the last rebuild (cheap to call every step).
        dx = x - self._at_x
        dy = y - self._at_y
        if dx * dx + dy * dy < REFRESH_M * REFRESH_M:
            return False
        self._at_x = x
        self._at_y = y
        lim = LOCAL_M + REFRESH_M
        self.nr = 0
        take = self._take
        for rk in self.user:
            take(rk)
        if self.seed:
            c = ROCK_CELL_M
            for i in range(int(math.floor((x - lim) / c)), int(math.floor((x + lim) / c)) + 1):
                for j in range(int(math.floor((y - lim) / c)), int(math.floor((y + lim) / c)) + 1):
                    self._draw(i, j, take)
        n = 0
        if self.seed:
            c = CRATER_CELL_M
            span = lim + CRATER_DMAX_M * 0.5
            for i in range(int(math.floor((x - span) / c)), int(math.floor((x + span) / c)) + 1):
                for j in range(int(math.floor((y - span) / c)), int(math.floor((y + span) / c)) + 1):
                    for cx, cy, rad, dep in self._cell_craters(i, j):
                        ex = cx - x
                        ey = cy - y
                        reach = lim + rad
                        if n < _MAX_CRATERS and ex * ex + ey * ey < reach * reach:
                            self.cx[n] = cx
                            self.cy[n] = cy
                            self.cr[n] = rad
                            self.cd[n] = dep
                            n += 1
        self.nc = n
        self.version += 1
        return True

    # -- lookups (no allocation beyond float arithmetic) --
    def ground(self, x, y):
        # height of the regolith at (x, y), m (plane, undulation, craters; no rocks)
        return self.base(x, y) + self.craters(x, y)

    def base(self, x, y):
        # the plane and the undulation at (x, y), m (smooth over NOISE_CELL_M)
        h = self.gx * x + self.gy * y
        if not self.seed:
            return h
        c = NOISE_CELL_M
        fx = x / c
        fy = y / c
        i = int(math.floor(fx))
        j = int(math.floor(fy))
        tx = fx - i
        ty = fy - j
        tx = tx * tx * (3.0 - 2.0 * tx)
        ty = ty * ty * (3.0 - 2.0 * ty)
        s = self.seed
        k = 2.0 / _M30
        a = _hash(s, i, j) * k
        b = _hash(s, i + 1, j) * k
        c0 = a + (b - a) * tx
        a = _hash(s, i, j + 1) * k
        b = _hash(s, i + 1, j + 1) * k
        c1 = a + (b - a) * tx
        return h + NOISE_AMP_M * (c0 + (c1 - c0) * ty - 1.0)

    def craters(self, x, y):
        # the craters' depth at (x, y), m (<= 0)
        h = 0.0
        for n in range(self.nc):
            ex = x - self.cx[n]
            ey = y - self.cy[n]
            r = self.cr[n]
            d2 = ex * ex + ey * ey
            if d2 < r * r:
                h -= self.cd[n] * (1.0 - d2 / (r * r))
        return h

    def select_near(self, x, y, r):
        # the local rocks a wheel within r of (x, y) may touch, for wheel()
        n = 0
        near = self._near
        for k in range(self.nr):
            ex = self.rx[k] - x
            ey = self.ry[k] - y
            reach = r + self.rw[k] * 0.5 + WHEEL_R_M
            if ex * ex + ey * ey < reach * reach:
                near[n] = k
                n += 1
        self._nn = n

    def wheel(self, x, y, ux, uy, hmax):
        # The rocks (at most hmax tall: taller ones block, they are not climbed)
        # under a wheel touching the ground at (x, y), among those select_near()
        # kept: sets self.bump (m) and self.grade, the slope of that bump along
        # the unit vector (ux, uy). A wheel rides a rock of height h and width w
        # on a cosine bump of half-width w/2 + WHEEL_R_M (its rim meets the rock
        # before its axle is over it).
        best = 0.0
        grade = 0.0
        near = self._near
        for m in range(self._nn):
            n = near[m]
            h = self.rh[n]
            if h > hmax:
                continue
            ex = x - self.rx[n]
            ey = y - self.ry[n]
            d2 = ex * ex + ey * ey
            L = self.rw[n] * 0.5 + WHEEL_R_M
            if d2 >= L * L:
                continue
            d = math.sqrt(d2)
            a = math.pi * d / L
            b = h * 0.5 * (1.0 + math.cos(a))
            if b > best:
                best = b
                # d(bump)/d(distance from centre) times the direction's share
                grade = -h * 0.5 * math.pi / L * math.sin(a) * ((ex * ux + ey * uy) / d if d > 1e-9 else 0.0)
        self.bump = best
        self.grade = grade


def _poisson(r, lam):
    # Knuth's method (lam is small here: a few per cell at most)
    if lam <= 0.0:
        return 0
    lim = math.exp(-lam)
    n = 0
    p = r.u()
    while p > lim:
        n += 1
        p *= r.u()
    return n
