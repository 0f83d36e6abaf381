#!/usr/bin/python3
# Writes pass_oracle.txt: passes of sim/data/qlinksat-1.tle over two stations, and look
# angles at fixed instants, from python3-sgp4's TEME states and an independent numpy
# implementation of GMST (IAU 1982) -> Earth-fixed -> WGS-84 ENU. Elevation is scanned
# every 1 s and crossings refined by bisection to 1 ms; the maximum by ternary search.
# Regenerate: /usr/bin/python3 tests/data/sgp4/make_pass_oracle.py > tests/data/sgp4/pass_oracle.txt
import math
import os

import numpy as np
from sgp4.api import Satrec, WGS72

here = os.path.dirname(os.path.abspath(__file__))
tle = [l.strip() for l in open(os.path.join(here, '../../../sim/data/qlinksat-1.tle')) if l.startswith(('1 ', '2 '))]
sat = Satrec.twoline2rv(tle[0], tle[1], WGS72)
epoch_unix = (sat.jdsatepoch - 2440587.5) * 86400.0 + sat.jdsatepochF * 86400.0

A, F = 6378.137, 1 / 298.257223563
E2 = F * (2 - F)


def gmst(unix_s):
    tut1 = (unix_s - 946728000.0) / 86400.0 / 36525.0
    g = -6.2e-6 * tut1 ** 3 + 0.093104 * tut1 ** 2 + (876600.0 * 3600 + 8640184.812866) * tut1 + 67310.54841
    return math.fmod(math.radians(g) / 240.0, 2 * math.pi) % (2 * math.pi)


def station(lat, lon, alt_m):
    la, lo = math.radians(lat), math.radians(lon)
    n = A / math.sqrt(1 - E2 * math.sin(la) ** 2)
    h = alt_m / 1000.0
    r = np.array([(n + h) * math.cos(la) * math.cos(lo), (n + h) * math.cos(la) * math.sin(lo), (n * (1 - E2) + h) * math.sin(la)])
    enu = np.array([[-math.sin(lo), math.cos(lo), 0],
                    [-math.sin(la) * math.cos(lo), -math.sin(la) * math.sin(lo), math.cos(la)],
                    [math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la)]])
    return r, enu


def look(st, unix_s):
    r0, enu = st
    e, r, v = sat.sgp4_tsince((unix_s - epoch_unix) / 60.0)
    assert e == 0
    g = gmst(unix_s)
    rot = np.array([[math.cos(g), math.sin(g), 0], [-math.sin(g), math.cos(g), 0], [0, 0, 1]])
    rp = rot @ np.array(r)
    vp = rot @ np.array(v) + np.array([7.292115146706979e-5 * rp[1], -7.292115146706979e-5 * rp[0], 0])
    rho = rp - r0
    loc = enu @ rho
    rng = np.linalg.norm(rho)
    el = math.degrees(math.asin(loc[2] / rng))
    az = math.degrees(math.atan2(loc[0], loc[1])) % 360.0
    return az, el, rng, float(rho @ vp / rng)


def passes(st, mask, start, hours):
    out = []
    f = lambda t: look(st, t)[1] - mask
    t = start
    prev = f(t)
    while prev > 0:
        t += 1
        prev = f(t)
    end = start + hours * 3600
    aos = None
    while t < end:
        cur = f(t + 1)
        if (prev <= 0) != (cur <= 0):
            lo, hi = t, t + 1.0
            while hi - lo > 1e-3:
                mid = (lo + hi) / 2
                if (f(mid) > 0) == (f(lo) > 0):
                    lo = mid
                else:
                    hi = mid
            x = (lo + hi) / 2
            if cur > 0:
                aos = x
            elif aos is not None:
                a, b = aos, x
                while b - a > 1e-3:
                    m1, m2 = a + (b - a) / 3, b - (b - a) / 3
                    if f(m1) > f(m2):
                        b = m2
                    else:
                        a = m1
                tm = (a + b) / 2
                out.append((aos, x, tm, f(tm) + mask))
                aos = None
        prev = cur
        t += 1
    return out


start = epoch_unix + 3600.0
print('# passes of', tle[0][2:7], 'from python3-sgp4 + numpy; times are unix seconds')
print('# PASS lat lon alt_m mask_deg aos los tmax maxel_deg')
print('# LOOK lat lon alt_m unix az_deg el_deg range_km range_rate_km_s')
for lat, lon, alt, mask in ((48.0785, 11.2795, 600.0, 0.0), (48.0785, 11.2795, 600.0, 10.0), (-33.9, 18.4, 10.0, 5.0)):
    st = station(lat, lon, alt)
    for p in passes(st, mask, start, 24):
        print('PASS %.6f %.6f %.3f %.1f %.4f %.4f %.4f %.6f' % ((lat, lon, alt, mask) + p))
st = station(48.0785, 11.2795, 600.0)
for k in range(12):
    t = start + k * 5400.0 + 123.25
    print('LOOK 48.0785 11.2795 600.0 %.3f %.9f %.9f %.9f %.12f' % ((t,) + look(st, t)))
