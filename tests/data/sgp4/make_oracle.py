#!/usr/bin/python3
# Writes sgp4_oracle.txt: Vallado's verification TLEs (shipped by Debian's python3-sgp4)
# propagated by python3-sgp4 (WGS-72, improved mode) at the times the reference's
# verification driver uses: t = 0, then start..stop by step, then stop.
# Regenerate: /usr/bin/python3 tests/data/sgp4/make_oracle.py > tests/data/sgp4/sgp4_oracle.txt
import math
import os
import sys

import sgp4
from sgp4.api import Satrec, WGS72

path = os.path.join(os.path.dirname(sgp4.__file__), 'SGP4-VER.TLE')
lines = [l.rstrip('\n') for l in open(path) if l.strip() and not l.startswith('#')]
print('# python3-sgp4 oracle for', os.path.basename(path), '(WGS-72, opsmode i)')
print('# TLE1/TLE2 lines (first 69 columns), then: tsince_min error x y z (km) vx vy vz (km/s)')
for i in range(0, len(lines), 2):
    l1, l2 = lines[i], lines[i + 1]
    start, stop, step = (float(x) for x in l2[69:].split()[:3])
    sat = Satrec.twoline2rv(l1[:69], l2[:69], WGS72)
    print('TLE1', l1[:69])
    print('TLE2', l2[:69])
    times = [0.0]
    t = start
    while (step > 0 and t <= stop + 1e-9) or (step < 0 and t >= stop - 1e-9):
        if t != 0.0:
            times.append(t)
        t += step
    if abs(times[-1] - stop) > 1e-9:
        times.append(stop)
    for t in times:
        e, r, v = sat.sgp4_tsince(t)
        if e != 0 or any(math.isnan(x) for x in r):
            print('%.8f %d' % (t, e))
        else:
            print('%.8f %d %.9f %.9f %.9f %.12f %.12f %.12f' % ((t, e) + tuple(r) + tuple(v)))
    print('END')
