//! The exponential that training's softmax and the log-sum-exp of the evaluation use.
//!
//! Written out here, rather than calling the C library's `expf`/`exp`, for two reasons:
//!
//! * **Speed.** It is straight-line code of additions, multiplications and bit
//!   operations, with no branch and no call, so the compiler vectorises the loops that
//!   apply it over a whole row of scores. The library call cost about 2 ns per value and
//!   kept those loops scalar.
//! * **The same bits everywhere.** Its result depends only on IEEE additions and
//!   multiplications (no fused multiply-add, whose use would depend on the build), so it
//!   is the same whether a loop is vectorised or not, on any x86-64 or other machine, and
//!   whatever C library is installed (the C library's exponential differs between
//!   versions).
//!
//! The method is Cephes' (S. L. Moshier, *Methods and Programs for Mathematical
//! Functions*, 1989; the `expf` and `exp` of the Cephes library): `x = n ln 2 + r` with
//! `n` the nearest integer to `x / ln 2` and `ln 2` split in two parts (Cody and Waite),
//! a minimax polynomial (f32) or rational function (f64) for `e^r` on
//! `|r| <= ln(2) / 2`, and `2^n` built from its exponent bits. Its constants are written
//! here rounded to the type (Cephes prints more digits than an f32 or f64 holds). The tests below bound the
//! error: at most 1 ulp in f32 (against the correctly rounded value) and 2 ulp in f64
//! (against the C library's).

/// `e^x` in f32. NaN gives NaN, `-inf` gives 0, `+inf` gives `+inf`, and results below
/// the smallest subnormal round to 0.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    // 1.5 * 2^23: adding it rounds to the nearest integer (ties to even) and leaves that
    // integer in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    const C1: f32 = 0.693_359_4; // 355 / 512, exact in f32
    const C2: f32 = -2.121_944_4e-4;
    const P: [f32; 6] = [
        1.987_569_2e-4,
        1.398_2e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ];
    // Beyond these, e^x overflows (88.73) or is below half the smallest subnormal
    // (-103.97); the clamp keeps n within what two scale factors can represent.
    let c = x.clamp(-104.0, 89.0);
    let t = c * std::f32::consts::LOG2_E + ROUND;
    let n = t.to_bits() as i32 - ROUND.to_bits() as i32;
    let nf = t - ROUND;
    let r = c - nf * C1 - nf * C2;
    let z = r * r;
    let mut p = P[0];
    for &coef in &P[1..] {
        p = p * r + coef;
    }
    let e = p * z + r + 1.0;
    // 2^n as 2^n1 * 2^n2, each a normal number for n in [-150, 129].
    let n1 = n >> 1;
    let n2 = n - n1;
    let s1 = f32::from_bits(((n1 + 127) as u32) << 23);
    let s2 = f32::from_bits(((n2 + 127) as u32) << 23);
    let y = e * s1 * s2;
    if x < -104.0 {
        0.0
    } else if x.is_nan() {
        x
    } else {
        y
    }
}

/// `e^x` in f64. NaN gives NaN, `-inf` gives 0, `+inf` gives `+inf`, and results below
/// the smallest subnormal round to 0.
#[inline(always)]
pub fn exp_f64(x: f64) -> f64 {
    // 1.5 * 2^52, as in [`exp_f32`].
    const ROUND: f64 = 6_755_399_441_055_744.0;
    const C1: f64 = 6.931_457_519_531_25e-1;
    const C2: f64 = 1.428_606_820_309_417_3e-6;
    const P: [f64; 3] = [1.261_771_930_748_105_8e-4, 3.029_944_077_074_419_5e-2, 1.0];
    const Q: [f64; 4] = [
        3.001_985_051_386_644_6e-6,
        2.524_483_403_496_841e-3,
        2.272_655_482_081_550_3e-1,
        2.0,
    ];
    // Beyond these, e^x overflows (709.78) or is below half the smallest subnormal
    // (-745.13).
    let c = x.clamp(-746.0, 710.0);
    let t = c * std::f64::consts::LOG2_E + ROUND;
    let n = t.to_bits() as i64 - ROUND.to_bits() as i64;
    let nf = t - ROUND;
    let r = c - nf * C1 - nf * C2;
    let z = r * r;
    let px = r * ((P[0] * z + P[1]) * z + P[2]);
    let q = ((Q[0] * z + Q[1]) * z + Q[2]) * z + Q[3];
    let e = 1.0 + 2.0 * (px / (q - px));
    let n1 = n >> 1;
    let n2 = n - n1;
    let s1 = f64::from_bits(((n1 + 1023) as u64) << 52);
    let s2 = f64::from_bits(((n2 + 1023) as u64) << 52);
    let y = e * s1 * s2;
    if x < -746.0 {
        0.0
    } else if x.is_nan() {
        x
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite f32 of the same sign.
    fn ulps32(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    fn ulps64(a: f64, b: f64) -> u64 {
        (a.to_bits() as i128 - b.to_bits() as i128).unsigned_abs() as u64
    }

    #[test]
    fn f32_is_within_one_ulp_of_the_correctly_rounded_value() {
        // Every 97th f32 from -104 to 89 (about 1.1 million values), against e^x computed
        // in f64 and rounded once, which is the correctly rounded f32 result but for
        // double-rounding cases a hair from a tie.
        let (lo, hi) = ((-104.0f32).to_bits(), 89.0f32.to_bits());
        let negatives = (0x8000_0000u32..=lo).step_by(97);
        let positives = (0u32..=hi).step_by(97);
        let mut worst = (0, 0.0f32);
        for bits in negatives.chain(positives) {
            let x = f32::from_bits(bits);
            let want = (f64::from(x)).exp() as f32;
            let got = exp_f32(x);
            if want.is_infinite() {
                assert_eq!(got, want, "e^{x}");
                continue;
            }
            let u = ulps32(got, want);
            if u > worst.0 {
                worst = (u, x);
            }
        }
        assert!(worst.0 <= 1, "{} ulp at x = {}", worst.0, worst.1);
    }

    #[test]
    fn f64_is_within_two_ulp_of_the_library() {
        // A fixed pseudo-random sample of 2 million values over the whole range, plus the
        // neighbourhood of 0 where most softmax arguments lie.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut worst = (0, 0.0f64);
        for i in 0..2_000_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            let x = if i % 2 == 0 {
                -745.0 + u * (709.7 + 745.0)
            } else {
                -20.0 * u
            };
            let (got, want) = (exp_f64(x), x.exp());
            let d = ulps64(got, want);
            if d > worst.0 {
                worst = (d, x);
            }
        }
        assert!(worst.0 <= 2, "{} ulp at x = {}", worst.0, worst.1);
    }

    #[test]
    fn special_values() {
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f64(0.0), 1.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f64(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-200.0), 0.0);
        assert_eq!(exp_f64(-800.0), 0.0);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f64(f64::INFINITY), f64::INFINITY);
        assert_eq!(exp_f32(89.0), f32::INFINITY);
        assert_eq!(exp_f64(710.0), f64::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
        assert!(exp_f64(f64::NAN).is_nan());
        // Subnormal results.
        let tiny = exp_f32(-100.0);
        assert!(tiny > 0.0 && !tiny.is_normal());
        assert!(ulps32(tiny, (-100.0f64).exp() as f32) <= 1);
        let tiny = exp_f64(-740.0);
        assert!(tiny > 0.0 && !tiny.is_normal());
        assert!(ulps64(tiny, (-740.0f64).exp()) <= 1);
        // The largest finite results.
        assert!(exp_f32(88.72).is_finite());
        assert!(exp_f64(709.78).is_finite());
    }

    #[test]
    fn a_vectorised_loop_gives_the_scalar_bits() {
        // The loop below is vectorised by the compiler in an optimised build; each element
        // must equal the value computed alone, behind an opaque barrier.
        let xs: Vec<f32> = (0..4099).map(|i| -30.0 + i as f32 * 0.0123).collect();
        let mut ys = vec![0.0f32; xs.len()];
        ys.iter_mut().zip(&xs).for_each(|(y, &x)| *y = exp_f32(x));
        for (&x, &y) in xs.iter().zip(&ys) {
            assert_eq!(exp_f32(std::hint::black_box(x)).to_bits(), y.to_bits());
        }
        let xs: Vec<f64> = xs.iter().map(|&x| f64::from(x)).collect();
        let mut ys = vec![0.0f64; xs.len()];
        ys.iter_mut().zip(&xs).for_each(|(y, &x)| *y = exp_f64(x));
        for (&x, &y) in xs.iter().zip(&ys) {
            assert_eq!(exp_f64(std::hint::black_box(x)).to_bits(), y.to_bits());
        }
    }
}
