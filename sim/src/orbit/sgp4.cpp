// SGP4 (near earth) and SDP4 (deep space, lunar-solar and resonance terms) propagation.
//
// Follows Vallado, Crawford, Hujsak, Kelso (2006), "Revisiting Spacetrack Report #3",
// AIAA 2006-6753, in its 'improved' operation mode: same constants, same order of
// operations, so the results agree with the reference to round-off. Variable names
// keep the paper's so the code can be checked against it line by line.
#include "qlink/sim/sgp4.hpp"

#include <cmath>
#include <numbers>

namespace qlink::sim {

namespace {

constexpr double pi = std::numbers::pi;
constexpr double twopi = 2.0 * std::numbers::pi;
constexpr double deg2rad = pi / 180.0;
constexpr double x2o3 = 2.0 / 3.0;

struct gravity_constants {
    double mu, radiusearthkm, xke, tumin, j2, j3, j4, j3oj2;
};

gravity_constants make_gravity(gravity_model m) {
    gravity_constants g{};
    if (m == gravity_model::wgs72) {
        g.mu = 398600.8;
        g.radiusearthkm = 6378.135;
        g.j2 = 0.001082616;
        g.j3 = -0.00000253881;
        g.j4 = -0.00000165597;
    } else {
        g.mu = 398600.5;
        g.radiusearthkm = 6378.137;
        g.j2 = 0.00108262998905;
        g.j3 = -0.00000253215306;
        g.j4 = -0.00000161098761;
    }
    g.xke = 60.0 / std::sqrt(g.radiusearthkm * g.radiusearthkm * g.radiusearthkm / g.mu);
    g.tumin = 1.0 / g.xke;
    g.j3oj2 = g.j3 / g.j2;
    return g;
}

// Greenwich mean sidereal time (IAU 1982), radians.
double gstime(double jdut1) {
    const double tut1 = (jdut1 - 2451545.0) / 36525.0;
    double temp = -6.2e-6 * tut1 * tut1 * tut1 + 0.093104 * tut1 * tut1 +
                  (876600.0 * 3600 + 8640184.812866) * tut1 + 67310.54841;
    temp = std::fmod(temp * deg2rad / 240.0, twopi);
    if (temp < 0.0) temp += twopi;
    return temp;
}

// Lunar-solar coefficients computed once at epoch (dscom in the paper).
struct dscom_out {
    double snodm, cnodm, sinim, cosim, sinomm, cosomm, day, e3, ee2, em, emsq, gam, rtemsq;
    double se2, se3, sgh2, sgh3, sgh4, sh2, sh3, si2, si3, sl2, sl3, sl4;
    double s1, s2, s3, s4, s5, s6, s7, ss1, ss2, ss3, ss4, ss5, ss6, ss7;
    double sz1, sz2, sz3, sz11, sz12, sz13, sz21, sz22, sz23, sz31, sz32, sz33;
    double xgh2, xgh3, xgh4, xh2, xh3, xi2, xi3, xl2, xl3, xl4, nm;
    double z1, z2, z3, z11, z12, z13, z21, z22, z23, z31, z32, z33, zmol, zmos;
};

dscom_out dscom(double epoch, double ep, double argpp, double tc, double inclp, double nodep, double np) {
    constexpr double zes = 0.01675, zel = 0.05490, c1ss = 2.9864797e-6, c1l = 4.7968065e-7;
    constexpr double zsinis = 0.39785416, zcosis = 0.91744867, zcosgs = 0.1945905, zsings = -0.98088458;
    dscom_out o{};
    o.nm = np;
    o.em = ep;
    o.snodm = std::sin(nodep);
    o.cnodm = std::cos(nodep);
    o.sinomm = std::sin(argpp);
    o.cosomm = std::cos(argpp);
    o.sinim = std::sin(inclp);
    o.cosim = std::cos(inclp);
    o.emsq = o.em * o.em;
    const double betasq = 1.0 - o.emsq;
    o.rtemsq = std::sqrt(betasq);

    o.day = epoch + 18261.5 + tc / 1440.0;
    const double xnodce = std::fmod(4.5236020 - 9.2422029e-4 * o.day, twopi);
    const double stem = std::sin(xnodce), ctem = std::cos(xnodce);
    const double zcosil = 0.91375164 - 0.03568096 * ctem;
    const double zsinil = std::sqrt(1.0 - zcosil * zcosil);
    const double zsinhl = 0.089683511 * stem / zsinil;
    const double zcoshl = std::sqrt(1.0 - zsinhl * zsinhl);
    o.gam = 5.8351514 + 0.0019443680 * o.day;
    double zx = 0.39785416 * stem / zsinil;
    const double zy = zcoshl * ctem + 0.91744867 * zsinhl * stem;
    zx = std::atan2(zx, zy);
    zx = o.gam + zx - xnodce;
    const double zcosgl = std::cos(zx), zsingl = std::sin(zx);

    // First pass: sun; second pass: moon.
    double zcosg = zcosgs, zsing = zsings, zcosi = zcosis, zsini = zsinis;
    double zcosh = o.cnodm, zsinh = o.snodm, cc = c1ss;
    const double xnoi = 1.0 / o.nm;
    for (int lsflg = 1; lsflg <= 2; ++lsflg) {
        const double a1 = zcosg * zcosh + zsing * zcosi * zsinh;
        const double a3 = -zsing * zcosh + zcosg * zcosi * zsinh;
        const double a7 = -zcosg * zsinh + zsing * zcosi * zcosh;
        const double a8 = zsing * zsini;
        const double a9 = zsing * zsinh + zcosg * zcosi * zcosh;
        const double a10 = zcosg * zsini;
        const double a2 = o.cosim * a7 + o.sinim * a8;
        const double a4 = o.cosim * a9 + o.sinim * a10;
        const double a5 = -o.sinim * a7 + o.cosim * a8;
        const double a6 = -o.sinim * a9 + o.cosim * a10;

        const double x1 = a1 * o.cosomm + a2 * o.sinomm;
        const double x2 = a3 * o.cosomm + a4 * o.sinomm;
        const double x3 = -a1 * o.sinomm + a2 * o.cosomm;
        const double x4 = -a3 * o.sinomm + a4 * o.cosomm;
        const double x5 = a5 * o.sinomm;
        const double x6 = a6 * o.sinomm;
        const double x7 = a5 * o.cosomm;
        const double x8 = a6 * o.cosomm;

        o.z31 = 12.0 * x1 * x1 - 3.0 * x3 * x3;
        o.z32 = 24.0 * x1 * x2 - 6.0 * x3 * x4;
        o.z33 = 12.0 * x2 * x2 - 3.0 * x4 * x4;
        o.z1 = 3.0 * (a1 * a1 + a2 * a2) + o.z31 * o.emsq;
        o.z2 = 6.0 * (a1 * a3 + a2 * a4) + o.z32 * o.emsq;
        o.z3 = 3.0 * (a3 * a3 + a4 * a4) + o.z33 * o.emsq;
        o.z11 = -6.0 * a1 * a5 + o.emsq * (-24.0 * x1 * x7 - 6.0 * x3 * x5);
        o.z12 = -6.0 * (a1 * a6 + a3 * a5) + o.emsq * (-24.0 * (x2 * x7 + x1 * x8) - 6.0 * (x3 * x6 + x4 * x5));
        o.z13 = -6.0 * a3 * a6 + o.emsq * (-24.0 * x2 * x8 - 6.0 * x4 * x6);
        o.z21 = 6.0 * a2 * a5 + o.emsq * (24.0 * x1 * x5 - 6.0 * x3 * x7);
        o.z22 = 6.0 * (a4 * a5 + a2 * a6) + o.emsq * (24.0 * (x2 * x5 + x1 * x6) - 6.0 * (x4 * x7 + x3 * x8));
        o.z23 = 6.0 * a4 * a6 + o.emsq * (24.0 * x2 * x6 - 6.0 * x4 * x8);
        o.z1 = o.z1 + o.z1 + betasq * o.z31;
        o.z2 = o.z2 + o.z2 + betasq * o.z32;
        o.z3 = o.z3 + o.z3 + betasq * o.z33;
        o.s3 = cc * xnoi;
        o.s2 = -0.5 * o.s3 / o.rtemsq;
        o.s4 = o.s3 * o.rtemsq;
        o.s1 = -15.0 * o.em * o.s4;
        o.s5 = x1 * x3 + x2 * x4;
        o.s6 = x2 * x3 + x1 * x4;
        o.s7 = x2 * x4 - x1 * x3;

        if (lsflg == 1) {
            o.ss1 = o.s1; o.ss2 = o.s2; o.ss3 = o.s3; o.ss4 = o.s4;
            o.ss5 = o.s5; o.ss6 = o.s6; o.ss7 = o.s7;
            o.sz1 = o.z1; o.sz2 = o.z2; o.sz3 = o.z3;
            o.sz11 = o.z11; o.sz12 = o.z12; o.sz13 = o.z13;
            o.sz21 = o.z21; o.sz22 = o.z22; o.sz23 = o.z23;
            o.sz31 = o.z31; o.sz32 = o.z32; o.sz33 = o.z33;
            zcosg = zcosgl;
            zsing = zsingl;
            zcosi = zcosil;
            zsini = zsinil;
            zcosh = zcoshl * o.cnodm + zsinhl * o.snodm;
            zsinh = o.snodm * zcoshl - o.cnodm * zsinhl;
            cc = c1l;
        }
    }

    o.zmol = std::fmod(4.7199672 + 0.22997150 * o.day - o.gam, twopi);
    o.zmos = std::fmod(6.2565837 + 0.017201977 * o.day, twopi);

    o.se2 = 2.0 * o.ss1 * o.ss6;
    o.se3 = 2.0 * o.ss1 * o.ss7;
    o.si2 = 2.0 * o.ss2 * o.sz12;
    o.si3 = 2.0 * o.ss2 * (o.sz13 - o.sz11);
    o.sl2 = -2.0 * o.ss3 * o.sz2;
    o.sl3 = -2.0 * o.ss3 * (o.sz3 - o.sz1);
    o.sl4 = -2.0 * o.ss3 * (-21.0 - 9.0 * o.emsq) * zes;
    o.sgh2 = 2.0 * o.ss4 * o.sz32;
    o.sgh3 = 2.0 * o.ss4 * (o.sz33 - o.sz31);
    o.sgh4 = -18.0 * o.ss4 * zes;
    o.sh2 = -2.0 * o.ss2 * o.sz22;
    o.sh3 = -2.0 * o.ss2 * (o.sz23 - o.sz21);

    o.ee2 = 2.0 * o.s1 * o.s6;
    o.e3 = 2.0 * o.s1 * o.s7;
    o.xi2 = 2.0 * o.s2 * o.z12;
    o.xi3 = 2.0 * o.s2 * (o.z13 - o.z11);
    o.xl2 = -2.0 * o.s3 * o.z2;
    o.xl3 = -2.0 * o.s3 * (o.z3 - o.z1);
    o.xl4 = -2.0 * o.s3 * (-21.0 - 9.0 * o.emsq) * zel;
    o.xgh2 = 2.0 * o.s4 * o.z32;
    o.xgh3 = 2.0 * o.s4 * (o.z33 - o.z31);
    o.xgh4 = -18.0 * o.s4 * zel;
    o.xh2 = -2.0 * o.s2 * o.z22;
    o.xh3 = -2.0 * o.s2 * (o.z23 - o.z21);
    return o;
}

// Everything sgp4init computes; constant after construction.
struct elements_state {
    // from the element set
    double bstar, ecco, argpo, inclo, mo, no_kozai, nodeo, epoch;
    // initialisation products
    bool deep = false;
    bool isimp = false;
    double no_unkozai, a, con41, x1mth2, x7thm1, cc1, cc4, cc5, d2, d3, d4, delmo, eta, argpdot, omgcof;
    double sinmao, t2cof, t3cof, t4cof, t5cof, xlcof, aycof, xmcof, nodecf, mdot, nodedot, gsto;
    // deep space
    int irez = 0;
    double d2201, d2211, d3210, d3222, d4410, d4422, d5220, d5232, d5421, d5433;
    double dedt, del1, del2, del3, didt, dmdt, dnodt, domdt, e3, ee2, peo, pgho, pho, pinco, plo;
    double se2, se3, sgh2, sgh3, sgh4, sh2, sh3, si2, si3, sl2, sl3, sl4, xfact;
    double xgh2, xgh3, xgh4, xh2, xh3, xi2, xi3, xl2, xl3, xl4, xlamo, zmol, zmos;
};

// Lunar-solar periodics (dpper). `init` true only during initialisation, where the
// reference applies nothing.
void dpper(const elements_state& s, double t, bool init, double& ep, double& inclp, double& nodep,
           double& argpp, double& mp) {
    constexpr double zns = 1.19459e-5, zes = 0.01675, znl = 1.5835218e-4, zel = 0.05490;
    double zm = init ? s.zmos : s.zmos + zns * t;
    double zf = zm + 2.0 * zes * std::sin(zm);
    double sinzf = std::sin(zf);
    double f2 = 0.5 * sinzf * sinzf - 0.25;
    double f3 = -0.5 * sinzf * std::cos(zf);
    const double ses = s.se2 * f2 + s.se3 * f3;
    const double sis = s.si2 * f2 + s.si3 * f3;
    const double sls = s.sl2 * f2 + s.sl3 * f3 + s.sl4 * sinzf;
    const double sghs = s.sgh2 * f2 + s.sgh3 * f3 + s.sgh4 * sinzf;
    const double shs = s.sh2 * f2 + s.sh3 * f3;
    zm = init ? s.zmol : s.zmol + znl * t;
    zf = zm + 2.0 * zel * std::sin(zm);
    sinzf = std::sin(zf);
    f2 = 0.5 * sinzf * sinzf - 0.25;
    f3 = -0.5 * sinzf * std::cos(zf);
    const double sel = s.ee2 * f2 + s.e3 * f3;
    const double sil = s.xi2 * f2 + s.xi3 * f3;
    const double sll = s.xl2 * f2 + s.xl3 * f3 + s.xl4 * sinzf;
    const double sghl = s.xgh2 * f2 + s.xgh3 * f3 + s.xgh4 * sinzf;
    const double shll = s.xh2 * f2 + s.xh3 * f3;
    double pe = ses + sel;
    double pinc = sis + sil;
    double pl = sls + sll;
    double pgh = sghs + sghl;
    double ph = shs + shll;
    if (init) return;

    pe -= s.peo;
    pinc -= s.pinco;
    pl -= s.plo;
    pgh -= s.pgho;
    ph -= s.pho;
    inclp += pinc;
    ep += pe;
    const double sinip = std::sin(inclp), cosip = std::cos(inclp);
    if (inclp >= 0.2) {
        ph /= sinip;
        pgh -= cosip * ph;
        argpp += pgh;
        nodep += ph;
        mp += pl;
    } else {
        // Lyddane's modification for low inclination.
        const double sinop = std::sin(nodep), cosop = std::cos(nodep);
        double alfdp = sinip * sinop;
        double betdp = sinip * cosop;
        const double dalf = ph * cosop + pinc * cosip * sinop;
        const double dbet = -ph * sinop + pinc * cosip * cosop;
        alfdp += dalf;
        betdp += dbet;
        nodep = std::fmod(nodep, twopi);
        double xls = mp + argpp + cosip * nodep;
        const double dls = pl + pgh - pinc * nodep * sinip;
        xls += dls;
        const double xnoh = nodep;
        nodep = std::atan2(alfdp, betdp);
        if (std::fabs(xnoh - nodep) > pi) {
            if (nodep < xnoh) nodep += twopi;
            else nodep -= twopi;
        }
        mp += pl;
        argpp = xls - mp - cosip * nodep;
    }
}

// Deep-space secular rates and resonance set-up (dsinit).
void dsinit(elements_state& s, const gravity_constants& g, const dscom_out& d, double xpidot, double eccsq) {
    constexpr double q22 = 1.7891679e-6, q31 = 2.1460748e-6, q33 = 2.2123015e-7;
    constexpr double root22 = 1.7891679e-6, root44 = 7.3636953e-9, root54 = 2.1765803e-9;
    constexpr double rptim = 4.37526908801129966e-3;
    constexpr double root32 = 3.7393792e-7, root52 = 1.1428639e-7;
    constexpr double znl = 1.5835218e-4, zns = 1.19459e-5;

    const double cosim = d.cosim, sinim = d.sinim;
    double em = d.em, emsq = d.emsq, nm = d.nm;
    const double inclm = s.inclo;

    s.irez = 0;
    if (nm < 0.0052359877 && nm > 0.0034906585) s.irez = 1;
    if (nm >= 8.26e-3 && nm <= 9.24e-3 && em >= 0.5) s.irez = 2;

    const double ses = d.ss1 * zns * d.ss5;
    const double sis = d.ss2 * zns * (d.sz11 + d.sz13);
    const double sls = -zns * d.ss3 * (d.sz1 + d.sz3 - 14.0 - 6.0 * emsq);
    const double sghs = d.ss4 * zns * (d.sz31 + d.sz33 - 6.0);
    double shs = -zns * d.ss2 * (d.sz21 + d.sz23);
    if (inclm < 5.2359877e-2 || inclm > pi - 5.2359877e-2) shs = 0.0;
    if (sinim != 0.0) shs = shs / sinim;
    const double sgs = sghs - cosim * shs;

    s.dedt = ses + d.s1 * znl * d.s5;
    s.didt = sis + d.s2 * znl * (d.z11 + d.z13);
    s.dmdt = sls - znl * d.s3 * (d.z1 + d.z3 - 14.0 - 6.0 * emsq);
    const double sghl = d.s4 * znl * (d.z31 + d.z33 - 6.0);
    double shll = -znl * d.s2 * (d.z21 + d.z23);
    if (inclm < 5.2359877e-2 || inclm > pi - 5.2359877e-2) shll = 0.0;
    s.domdt = sgs + sghl;
    s.dnodt = shs;
    if (sinim != 0.0) {
        s.domdt -= cosim / sinim * shll;
        s.dnodt += shll / sinim;
    }

    const double theta = std::fmod(s.gsto, twopi);  // tc = 0 at initialisation
    if (s.irez == 0) return;

    const double aonv = std::pow(nm / g.xke, x2o3);
    if (s.irez == 2) {
        // Half-day resonance (Molniya-type orbits), uses the epoch eccentricity.
        const double cosisq = cosim * cosim;
        em = s.ecco;
        emsq = eccsq;
        const double eoc = em * emsq;
        const double g201 = -0.306 - (em - 0.64) * 0.440;
        double g211, g310, g322, g410, g422, g520, g521, g532, g533;
        if (em <= 0.65) {
            g211 = 3.616 - 13.2470 * em + 16.2900 * emsq;
            g310 = -19.302 + 117.3900 * em - 228.4190 * emsq + 156.5910 * eoc;
            g322 = -18.9068 + 109.7927 * em - 214.6334 * emsq + 146.5816 * eoc;
            g410 = -41.122 + 242.6940 * em - 471.0940 * emsq + 313.9530 * eoc;
            g422 = -146.407 + 841.8800 * em - 1629.014 * emsq + 1083.4350 * eoc;
            g520 = -532.114 + 3017.977 * em - 5740.032 * emsq + 3708.2760 * eoc;
        } else {
            g211 = -72.099 + 331.819 * em - 508.738 * emsq + 266.724 * eoc;
            g310 = -346.844 + 1582.851 * em - 2415.925 * emsq + 1246.113 * eoc;
            g322 = -342.585 + 1554.908 * em - 2366.899 * emsq + 1215.972 * eoc;
            g410 = -1052.797 + 4758.686 * em - 7193.992 * emsq + 3651.957 * eoc;
            g422 = -3581.690 + 16178.110 * em - 24462.770 * emsq + 12422.520 * eoc;
            if (em > 0.715) g520 = -5149.66 + 29936.92 * em - 54087.36 * emsq + 31324.56 * eoc;
            else g520 = 1464.74 - 4664.75 * em + 3763.64 * emsq;
        }
        if (em < 0.7) {
            g533 = -919.22770 + 4988.6100 * em - 9064.7700 * emsq + 5542.21 * eoc;
            g521 = -822.71072 + 4568.6173 * em - 8491.4146 * emsq + 5337.524 * eoc;
            g532 = -853.66600 + 4690.2500 * em - 8624.7700 * emsq + 5341.4 * eoc;
        } else {
            g533 = -37995.780 + 161616.52 * em - 229838.20 * emsq + 109377.94 * eoc;
            g521 = -51752.104 + 218913.95 * em - 309468.16 * emsq + 146349.42 * eoc;
            g532 = -40023.880 + 170470.89 * em - 242699.48 * emsq + 115605.82 * eoc;
        }
        const double sini2 = sinim * sinim;
        const double f220 = 0.75 * (1.0 + 2.0 * cosim + cosisq);
        const double f221 = 1.5 * sini2;
        const double f321 = 1.875 * sinim * (1.0 - 2.0 * cosim - 3.0 * cosisq);
        const double f322 = -1.875 * sinim * (1.0 + 2.0 * cosim - 3.0 * cosisq);
        const double f441 = 35.0 * sini2 * f220;
        const double f442 = 39.3750 * sini2 * sini2;
        const double f522 = 9.84375 * sinim *
                            (sini2 * (1.0 - 2.0 * cosim - 5.0 * cosisq) +
                             0.33333333 * (-2.0 + 4.0 * cosim + 6.0 * cosisq));
        const double f523 = sinim * (4.92187512 * sini2 * (-2.0 - 4.0 * cosim + 10.0 * cosisq) +
                                     6.56250012 * (1.0 + 2.0 * cosim - 3.0 * cosisq));
        const double f542 = 29.53125 * sinim * (2.0 - 8.0 * cosim + cosisq * (-12.0 + 8.0 * cosim + 10.0 * cosisq));
        const double f543 = 29.53125 * sinim * (-2.0 - 8.0 * cosim + cosisq * (12.0 + 8.0 * cosim - 10.0 * cosisq));
        const double xno2 = nm * nm;
        const double ainv2 = aonv * aonv;
        double temp1 = 3.0 * xno2 * ainv2;
        double temp = temp1 * root22;
        s.d2201 = temp * f220 * g201;
        s.d2211 = temp * f221 * g211;
        temp1 = temp1 * aonv;
        temp = temp1 * root32;
        s.d3210 = temp * f321 * g310;
        s.d3222 = temp * f322 * g322;
        temp1 = temp1 * aonv;
        temp = 2.0 * temp1 * root44;
        s.d4410 = temp * f441 * g410;
        s.d4422 = temp * f442 * g422;
        temp1 = temp1 * aonv;
        temp = temp1 * root52;
        s.d5220 = temp * f522 * g520;
        s.d5232 = temp * f523 * g532;
        temp = 2.0 * temp1 * root54;
        s.d5421 = temp * f542 * g521;
        s.d5433 = temp * f543 * g533;
        s.xlamo = std::fmod(s.mo + s.nodeo + s.nodeo - theta - theta, twopi);
        s.xfact = s.mdot + s.dmdt + 2.0 * (s.nodedot + s.dnodt - rptim) - s.no_unkozai;
        em = d.em;
        emsq = d.emsq;
    }
    if (s.irez == 1) {
        // One-day resonance (geosynchronous orbits).
        const double g200 = 1.0 + emsq * (-2.5 + 0.8125 * emsq);
        const double g310 = 1.0 + 2.0 * emsq;
        const double g300 = 1.0 + emsq * (-6.0 + 6.60937 * emsq);
        const double f220 = 0.75 * (1.0 + cosim) * (1.0 + cosim);
        const double f311 = 0.9375 * sinim * sinim * (1.0 + 3.0 * cosim) - 0.75 * (1.0 + cosim);
        double f330 = 1.0 + cosim;
        f330 = 1.875 * f330 * f330 * f330;
        s.del1 = 3.0 * nm * nm * aonv * aonv;
        s.del2 = 2.0 * s.del1 * f220 * g200 * q22;
        s.del3 = 3.0 * s.del1 * f330 * g300 * q33 * aonv;
        s.del1 = s.del1 * f311 * g310 * q31 * aonv;
        s.xlamo = std::fmod(s.mo + s.nodeo + s.argpo - theta, twopi);
        s.xfact = s.mdot + xpidot - rptim + s.dmdt + s.domdt + s.dnodt - s.no_unkozai;
    }
}

// Deep-space secular effects and resonance integration (dspace), from epoch to t.
void dspace(const elements_state& s, double t, double& em, double& argpm, double& inclm, double& mm,
            double& nodem, double& nm) {
    constexpr double fasx2 = 0.13130908, fasx4 = 2.8843198, fasx6 = 0.37448087;
    constexpr double g22 = 5.7686396, g32 = 0.95240898, g44 = 1.8014998, g52 = 1.0508330, g54 = 4.4108898;
    constexpr double rptim = 4.37526908801129966e-3;
    constexpr double stepp = 720.0, stepn = -720.0, step2 = 259200.0;

    const double theta = std::fmod(s.gsto + t * rptim, twopi);
    em += s.dedt * t;
    inclm += s.didt * t;
    argpm += s.domdt * t;
    nodem += s.dnodt * t;
    mm += s.dmdt * t;
    if (s.irez == 0) return;

    double atime = 0.0, xni = s.no_unkozai, xli = s.xlamo;
    const double delt = t > 0.0 ? stepp : stepn;
    double ft = 0.0, xndt = 0.0, xnddt = 0.0, xldot = 0.0;
    // Bounded: |t| / 720 steps; a non-finite t would never converge, so cap it.
    for (long guard = 0; guard < 100000000L; ++guard) {
        if (s.irez != 2) {
            xndt = s.del1 * std::sin(xli - fasx2) + s.del2 * std::sin(2.0 * (xli - fasx4)) +
                   s.del3 * std::sin(3.0 * (xli - fasx6));
            xldot = xni + s.xfact;
            xnddt = s.del1 * std::cos(xli - fasx2) + 2.0 * s.del2 * std::cos(2.0 * (xli - fasx4)) +
                    3.0 * s.del3 * std::cos(3.0 * (xli - fasx6));
            xnddt *= xldot;
        } else {
            const double xomi = s.argpo + s.argpdot * atime;
            const double x2omi = xomi + xomi;
            const double x2li = xli + xli;
            xndt = s.d2201 * std::sin(x2omi + xli - g22) + s.d2211 * std::sin(xli - g22) +
                   s.d3210 * std::sin(xomi + xli - g32) + s.d3222 * std::sin(-xomi + xli - g32) +
                   s.d4410 * std::sin(x2omi + x2li - g44) + s.d4422 * std::sin(x2li - g44) +
                   s.d5220 * std::sin(xomi + xli - g52) + s.d5232 * std::sin(-xomi + xli - g52) +
                   s.d5421 * std::sin(xomi + x2li - g54) + s.d5433 * std::sin(-xomi + x2li - g54);
            xldot = xni + s.xfact;
            xnddt = s.d2201 * std::cos(x2omi + xli - g22) + s.d2211 * std::cos(xli - g22) +
                    s.d3210 * std::cos(xomi + xli - g32) + s.d3222 * std::cos(-xomi + xli - g32) +
                    s.d5220 * std::cos(xomi + xli - g52) + s.d5232 * std::cos(-xomi + xli - g52) +
                    2.0 * (s.d4410 * std::cos(x2omi + x2li - g44) + s.d4422 * std::cos(x2li - g44) +
                           s.d5421 * std::cos(xomi + x2li - g54) + s.d5433 * std::cos(-xomi + x2li - g54));
            xnddt *= xldot;
        }
        if (std::fabs(t - atime) >= stepp) {
            xli = xli + xldot * delt + xndt * step2;
            xni = xni + xndt * delt + xnddt * step2;
            atime += delt;
        } else {
            ft = t - atime;
            break;
        }
    }
    nm = xni + xndt * ft + xnddt * ft * ft * 0.5;
    const double xl = xli + xldot * ft + xndt * ft * ft * 0.5;
    if (s.irez != 1) mm = xl - 2.0 * nodem + 2.0 * theta;
    else mm = xl - nodem - argpm + theta;
    const double dndt = nm - s.no_unkozai;
    nm = s.no_unkozai + dndt;
}

class sgp4_impl final : public sgp4_propagator {
public:
    sgp4_impl(const tle& e, const sgp4_propagator::config& cfg) : tle_(e), g_(make_gravity(cfg.gravity)) { init(); }

    sgp4_result propagate_minutes(double tsince) const override;
    sgp4_result propagate(time_point t) const override {
        const double minutes = std::chrono::duration<double>(t - tle_.epoch()).count() / 60.0;
        return propagate_minutes(minutes);
    }
    const tle& elements() const override { return tle_; }
    bool deep_space() const override { return s_.deep; }

private:
    void init();

    tle tle_;
    gravity_constants g_;
    elements_state s_{};
};

void sgp4_impl::init() {
    constexpr double xpdotp = 1440.0 / twopi;
    elements_state& s = s_;
    s.bstar = tle_.bstar;
    s.ecco = tle_.eccentricity;
    s.argpo = tle_.arg_perigee_deg * deg2rad;
    s.inclo = tle_.inclination_deg * deg2rad;
    s.mo = tle_.mean_anomaly_deg * deg2rad;
    s.no_kozai = tle_.mean_motion_rev_day / xpdotp;
    s.nodeo = tle_.raan_deg * deg2rad;
    s.epoch = tle_.epoch_jd + tle_.epoch_jd_fraction - 2433281.5;

    const double temp4 = 1.5e-12;
    const double ss = 78.0 / g_.radiusearthkm + 1.0;
    const double qzms2ttemp = (120.0 - 78.0) / g_.radiusearthkm;
    const double qzms2t = qzms2ttemp * qzms2ttemp * qzms2ttemp * qzms2ttemp;

    // initl: un-Kozai the mean motion, epoch quantities.
    const double eccsq = s.ecco * s.ecco;
    const double omeosq = 1.0 - eccsq;
    const double rteosq = std::sqrt(omeosq);
    const double cosio = std::cos(s.inclo);
    const double cosio2 = cosio * cosio;
    const double ak = std::pow(g_.xke / s.no_kozai, x2o3);
    const double d1 = 0.75 * g_.j2 * (3.0 * cosio2 - 1.0) / (rteosq * omeosq);
    double del = d1 / (ak * ak);
    const double adel = ak * (1.0 - del * del - del * (1.0 / 3.0 + 134.0 * del * del / 81.0));
    del = d1 / (adel * adel);
    s.no_unkozai = s.no_kozai / (1.0 + del);
    const double ao = std::pow(g_.xke / s.no_unkozai, x2o3);
    const double sinio = std::sin(s.inclo);
    const double po = ao * omeosq;
    const double con42 = 1.0 - 5.0 * cosio2;
    s.con41 = -con42 - cosio2 - cosio2;
    const double posq = po * po;
    const double rp = ao * (1.0 - s.ecco);
    s.gsto = gstime(s.epoch + 2433281.5);
    s.a = std::pow(s.no_unkozai * g_.tumin, -x2o3);

    if (!(omeosq >= 0.0 || s.no_unkozai >= 0.0)) return;

    s.isimp = rp < (220.0 / g_.radiusearthkm + 1.0);
    double sfour = ss;
    double qzms24 = qzms2t;
    const double perige = (rp - 1.0) * g_.radiusearthkm;
    if (perige < 156.0) {
        sfour = perige - 78.0;
        if (perige < 98.0) sfour = 20.0;
        const double q = (120.0 - sfour) / g_.radiusearthkm;
        qzms24 = q * q * q * q;
        sfour = sfour / g_.radiusearthkm + 1.0;
    }
    const double pinvsq = 1.0 / posq;
    const double tsi = 1.0 / (ao - sfour);
    s.eta = ao * s.ecco * tsi;
    const double etasq = s.eta * s.eta;
    const double eeta = s.ecco * s.eta;
    const double psisq = std::fabs(1.0 - etasq);
    const double coef = qzms24 * std::pow(tsi, 4.0);
    const double coef1 = coef / std::pow(psisq, 3.5);
    const double cc2 = coef1 * s.no_unkozai *
                       (ao * (1.0 + 1.5 * etasq + eeta * (4.0 + etasq)) +
                        0.375 * g_.j2 * tsi / psisq * s.con41 * (8.0 + 3.0 * etasq * (8.0 + etasq)));
    s.cc1 = s.bstar * cc2;
    double cc3 = 0.0;
    if (s.ecco > 1.0e-4) cc3 = -2.0 * coef * tsi * g_.j3oj2 * s.no_unkozai * sinio / s.ecco;
    s.x1mth2 = 1.0 - cosio2;
    s.cc4 = 2.0 * s.no_unkozai * coef1 * ao * omeosq *
            (s.eta * (2.0 + 0.5 * etasq) + s.ecco * (0.5 + 2.0 * etasq) -
             g_.j2 * tsi / (ao * psisq) *
                 (-3.0 * s.con41 * (1.0 - 2.0 * eeta + etasq * (1.5 - 0.5 * eeta)) +
                  0.75 * s.x1mth2 * (2.0 * etasq - eeta * (1.0 + etasq)) * std::cos(2.0 * s.argpo)));
    s.cc5 = 2.0 * coef1 * ao * omeosq * (1.0 + 2.75 * (etasq + eeta) + eeta * etasq);
    const double cosio4 = cosio2 * cosio2;
    const double temp1 = 1.5 * g_.j2 * pinvsq * s.no_unkozai;
    const double temp2 = 0.5 * temp1 * g_.j2 * pinvsq;
    const double temp3 = -0.46875 * g_.j4 * pinvsq * pinvsq * s.no_unkozai;
    s.mdot = s.no_unkozai + 0.5 * temp1 * rteosq * s.con41 +
             0.0625 * temp2 * rteosq * (13.0 - 78.0 * cosio2 + 137.0 * cosio4);
    s.argpdot = -0.5 * temp1 * con42 + 0.0625 * temp2 * (7.0 - 114.0 * cosio2 + 395.0 * cosio4) +
                temp3 * (3.0 - 36.0 * cosio2 + 49.0 * cosio4);
    const double xhdot1 = -temp1 * cosio;
    s.nodedot = xhdot1 + (0.5 * temp2 * (4.0 - 19.0 * cosio2) + 2.0 * temp3 * (3.0 - 7.0 * cosio2)) * cosio;
    const double xpidot = s.argpdot + s.nodedot;
    s.omgcof = s.bstar * cc3 * std::cos(s.argpo);
    s.xmcof = 0.0;
    if (s.ecco > 1.0e-4) s.xmcof = -x2o3 * coef * s.bstar / eeta;
    s.nodecf = 3.5 * omeosq * xhdot1 * s.cc1;
    s.t2cof = 1.5 * s.cc1;
    if (std::fabs(cosio + 1.0) > 1.5e-12) s.xlcof = -0.25 * g_.j3oj2 * sinio * (3.0 + 5.0 * cosio) / (1.0 + cosio);
    else s.xlcof = -0.25 * g_.j3oj2 * sinio * (3.0 + 5.0 * cosio) / temp4;
    s.aycof = -0.5 * g_.j3oj2 * sinio;
    const double delmotemp = 1.0 + s.eta * std::cos(s.mo);
    s.delmo = delmotemp * delmotemp * delmotemp;
    s.sinmao = std::sin(s.mo);
    s.x7thm1 = 7.0 * cosio2 - 1.0;

    if (twopi / s.no_unkozai >= 225.0) {
        s.deep = true;
        s.isimp = true;
        const dscom_out d = dscom(s.epoch, s.ecco, s.argpo, 0.0, s.inclo, s.nodeo, s.no_unkozai);
        s.e3 = d.e3; s.ee2 = d.ee2;
        s.peo = 0.0; s.pgho = 0.0; s.pho = 0.0; s.pinco = 0.0; s.plo = 0.0;
        s.se2 = d.se2; s.se3 = d.se3; s.sgh2 = d.sgh2; s.sgh3 = d.sgh3; s.sgh4 = d.sgh4;
        s.sh2 = d.sh2; s.sh3 = d.sh3; s.si2 = d.si2; s.si3 = d.si3;
        s.sl2 = d.sl2; s.sl3 = d.sl3; s.sl4 = d.sl4;
        s.xgh2 = d.xgh2; s.xgh3 = d.xgh3; s.xgh4 = d.xgh4; s.xh2 = d.xh2; s.xh3 = d.xh3;
        s.xi2 = d.xi2; s.xi3 = d.xi3; s.xl2 = d.xl2; s.xl3 = d.xl3; s.xl4 = d.xl4;
        s.zmol = d.zmol; s.zmos = d.zmos;
        // The reference calls dpper in init mode here; it changes nothing.
        dsinit(s, g_, d, xpidot, eccsq);
    }

    if (!s.isimp) {
        const double cc1sq = s.cc1 * s.cc1;
        s.d2 = 4.0 * ao * tsi * cc1sq;
        const double temp = s.d2 * tsi * s.cc1 / 3.0;
        s.d3 = (17.0 * ao + sfour) * temp;
        s.d4 = 0.5 * temp * ao * tsi * (221.0 * ao + 31.0 * sfour) * s.cc1;
        s.t3cof = s.d2 + 2.0 * cc1sq;
        s.t4cof = 0.25 * (3.0 * s.d3 + s.cc1 * (12.0 * s.d2 + 10.0 * cc1sq));
        s.t5cof = 0.2 * (3.0 * s.d4 + 12.0 * s.cc1 * s.d3 + 6.0 * s.d2 * s.d2 + 15.0 * cc1sq * (2.0 * s.d2 + cc1sq));
    }
}

sgp4_result sgp4_impl::propagate_minutes(double t) const {
    const elements_state& s = s_;
    sgp4_result out;
    if (!std::isfinite(t)) {
        out.error = sgp4_error::mean_motion;
        return out;
    }
    const double temp4 = 1.5e-12;
    const double vkmpersec = g_.radiusearthkm * g_.xke / 60.0;

    // Secular gravity and atmospheric drag.
    const double xmdf = s.mo + s.mdot * t;
    const double argpdf = s.argpo + s.argpdot * t;
    const double nodedf = s.nodeo + s.nodedot * t;
    double argpm = argpdf;
    double mm = xmdf;
    const double t2 = t * t;
    double nodem = nodedf + s.nodecf * t2;
    double tempa = 1.0 - s.cc1 * t;
    double tempe = s.bstar * s.cc4 * t;
    double templ = s.t2cof * t2;
    if (!s.isimp) {
        const double delomg = s.omgcof * t;
        const double delmtemp = 1.0 + s.eta * std::cos(xmdf);
        const double delm = s.xmcof * (delmtemp * delmtemp * delmtemp - s.delmo);
        const double temp = delomg + delm;
        mm = xmdf + temp;
        argpm = argpdf - temp;
        const double t3 = t2 * t;
        const double t4 = t3 * t;
        tempa = tempa - s.d2 * t2 - s.d3 * t3 - s.d4 * t4;
        tempe = tempe + s.bstar * s.cc5 * (std::sin(mm) - s.sinmao);
        templ = templ + s.t3cof * t3 + t4 * (s.t4cof + t * s.t5cof);
    }
    double nm = s.no_unkozai;
    double em = s.ecco;
    double inclm = s.inclo;
    if (s.deep) dspace(s, t, em, argpm, inclm, mm, nodem, nm);

    if (nm <= 0.0) {
        out.error = sgp4_error::mean_motion;
        return out;
    }
    const double am = std::pow(g_.xke / nm, x2o3) * tempa * tempa;
    nm = g_.xke / std::pow(am, 1.5);
    em = em - tempe;
    if (em >= 1.0 || em < -0.001 || !std::isfinite(em)) {
        out.error = sgp4_error::mean_eccentricity;
        return out;
    }
    if (em < 1.0e-6) em = 1.0e-6;
    mm = mm + s.no_unkozai * templ;
    double xlm = mm + argpm + nodem;
    nodem = std::fmod(nodem, twopi);
    argpm = std::fmod(argpm, twopi);
    xlm = std::fmod(xlm, twopi);
    mm = std::fmod(xlm - argpm - nodem, twopi);

    // Lunar-solar periodics.
    double ep = em, xincp = inclm, argpp = argpm, nodep = nodem, mp = mm;
    double sinip = std::sin(inclm), cosip = std::cos(inclm);
    double aycof = s.aycof, xlcof = s.xlcof, con41 = s.con41, x1mth2 = s.x1mth2, x7thm1 = s.x7thm1;
    if (s.deep) {
        dpper(s, t, false, ep, xincp, nodep, argpp, mp);
        if (xincp < 0.0) {
            xincp = -xincp;
            nodep += pi;
            argpp -= pi;
        }
        if (ep < 0.0 || ep > 1.0) {
            out.error = sgp4_error::perturbed_eccentricity;
            return out;
        }
        sinip = std::sin(xincp);
        cosip = std::cos(xincp);
        aycof = -0.5 * g_.j3oj2 * sinip;
        if (std::fabs(cosip + 1.0) > 1.5e-12) xlcof = -0.25 * g_.j3oj2 * sinip * (3.0 + 5.0 * cosip) / (1.0 + cosip);
        else xlcof = -0.25 * g_.j3oj2 * sinip * (3.0 + 5.0 * cosip) / temp4;
    }

    // Long-period periodics.
    const double axnl = ep * std::cos(argpp);
    double temp = 1.0 / (am * (1.0 - ep * ep));
    const double aynl = ep * std::sin(argpp) + temp * aycof;
    const double xl = mp + argpp + nodep + temp * xlcof * axnl;

    // Kepler's equation.
    const double u = std::fmod(xl - nodep, twopi);
    double eo1 = u, tem5 = 9999.9, sineo1 = 0.0, coseo1 = 0.0;
    for (int ktr = 1; std::fabs(tem5) >= 1.0e-12 && ktr <= 10; ++ktr) {
        sineo1 = std::sin(eo1);
        coseo1 = std::cos(eo1);
        tem5 = 1.0 - coseo1 * axnl - sineo1 * aynl;
        tem5 = (u - aynl * coseo1 + axnl * sineo1 - eo1) / tem5;
        if (std::fabs(tem5) >= 0.95) tem5 = tem5 > 0.0 ? 0.95 : -0.95;
        eo1 += tem5;
    }

    // Short-period periodics.
    const double ecose = axnl * coseo1 + aynl * sineo1;
    const double esine = axnl * sineo1 - aynl * coseo1;
    const double el2 = axnl * axnl + aynl * aynl;
    const double pl = am * (1.0 - el2);
    if (pl < 0.0) {
        out.error = sgp4_error::semi_latus_rectum;
        return out;
    }
    const double rl = am * (1.0 - ecose);
    const double rdotl = std::sqrt(am) * esine / rl;
    const double rvdotl = std::sqrt(pl) / rl;
    const double betal = std::sqrt(1.0 - el2);
    temp = esine / (1.0 + betal);
    const double sinu = am / rl * (sineo1 - aynl - axnl * temp);
    const double cosu = am / rl * (coseo1 - axnl + aynl * temp);
    double su = std::atan2(sinu, cosu);
    const double sin2u = (cosu + cosu) * sinu;
    const double cos2u = 1.0 - 2.0 * sinu * sinu;
    temp = 1.0 / pl;
    const double temp1 = 0.5 * g_.j2 * temp;
    const double temp2 = temp1 * temp;
    if (s.deep) {
        const double cosisq = cosip * cosip;
        con41 = 3.0 * cosisq - 1.0;
        x1mth2 = 1.0 - cosisq;
        x7thm1 = 7.0 * cosisq - 1.0;
    }
    const double mrt = rl * (1.0 - 1.5 * temp2 * betal * con41) + 0.5 * temp1 * x1mth2 * cos2u;
    su = su - 0.25 * temp2 * x7thm1 * sin2u;
    const double xnode = nodep + 1.5 * temp2 * cosip * sin2u;
    const double xinc = xincp + 1.5 * temp2 * cosip * sinip * cos2u;
    const double mvt = rdotl - nm * temp1 * x1mth2 * sin2u / g_.xke;
    const double rvdot = rvdotl + nm * temp1 * (x1mth2 * cos2u + 1.5 * con41) / g_.xke;

    // Orientation vectors.
    const double sinsu = std::sin(su), cossu = std::cos(su);
    const double snod = std::sin(xnode), cnod = std::cos(xnode);
    const double sini = std::sin(xinc), cosi = std::cos(xinc);
    const double xmx = -snod * cosi, xmy = cnod * cosi;
    const double ux = xmx * sinsu + cnod * cossu;
    const double uy = xmy * sinsu + snod * cossu;
    const double uz = sini * sinsu;
    const double vx = xmx * cossu - cnod * sinsu;
    const double vy = xmy * cossu - snod * sinsu;
    const double vz = sini * cossu;

    out.r_km = {mrt * ux * g_.radiusearthkm, mrt * uy * g_.radiusearthkm, mrt * uz * g_.radiusearthkm};
    out.v_km_s = {(mvt * ux + rvdot * vx) * vkmpersec, (mvt * uy + rvdot * vy) * vkmpersec,
                  (mvt * uz + rvdot * vz) * vkmpersec};
    if (mrt < 1.0) out.error = sgp4_error::decayed;
    return out;
}

}  // namespace

std::string_view to_string(sgp4_error e) {
    switch (e) {
    case sgp4_error::none: return "ok";
    case sgp4_error::mean_eccentricity: return "mean eccentricity outside [-0.001, 1)";
    case sgp4_error::mean_motion: return "mean motion <= 0 (or time not finite)";
    case sgp4_error::perturbed_eccentricity: return "perturbed eccentricity outside [0, 1]";
    case sgp4_error::semi_latus_rectum: return "semi-latus rectum < 0";
    case sgp4_error::decayed: return "satellite has decayed (radius below the earth's surface)";
    }
    return "unknown";
}

std::unique_ptr<sgp4_propagator> create_sgp4_propagator(const tle& elements, const sgp4_propagator::config& cfg) {
    return std::make_unique<sgp4_impl>(elements, cfg);
}

}  // namespace qlink::sim
