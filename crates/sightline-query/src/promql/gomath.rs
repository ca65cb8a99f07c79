//! Float operations with Go's semantics, where Rust's differ, so answers equal Prometheus'
//! to the last digit.
//!
//! - `go_max`/`go_min`: Go's `math.Max`/`math.Min` propagate NaN (Rust's ignore it) and
//!   order the zeros;
//! - `go_pow`: Go computes `math.Pow` by splitting the exponent into integer and fraction
//!   parts and squaring, which is not correctly rounded, so `x ^ 3` can differ from libm's
//!   `pow` in the last bit; this is the same algorithm;
//! - `log2`/`log10`: Go's formulas on top of the natural logarithm;
//! - `kahan_sum_inc`: the Neumaier-compensated step Prometheus uses in `*_over_time` sums;
//! - `go_sort`: Go's `sort.Sort` order for small inputs, where ties and NaNs land.
//!
//! `gomath/elementary.rs` has Go's `exp`, logarithm, trigonometric and hyperbolic functions.

/// Go's `math.Max`.
pub(crate) fn go_max(a: f64, b: f64) -> f64 {
    if a == f64::INFINITY || b == f64::INFINITY {
        return f64::INFINITY;
    }
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { b } else { a };
    }
    if a > b { a } else { b }
}

/// Go's `math.Min`.
pub(crate) fn go_min(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY || b == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { a } else { b };
    }
    if a < b { a } else { b }
}

/// Go's `math.Frexp`: `x = frac × 2^exp` with `|frac|` in `[0.5, 1)`.
pub(crate) fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let (mut x, mut e) = (x, 0);
    if x.abs() < f64::MIN_POSITIVE {
        x *= (1u64 << 52) as f64;
        e = -52;
    }
    let bits = x.to_bits();
    e += ((bits >> 52) & 0x7ff) as i32 - 1022;
    let bits = (bits & !(0x7ff << 52)) | (1022 << 52);
    (f64::from_bits(bits), e)
}

/// Go's `math.Ldexp`: `frac × 2^exp`, rounding subnormal results as Go does.
pub(crate) fn ldexp(frac: f64, exp: i32) -> f64 {
    if frac == 0.0 || !frac.is_finite() {
        return frac;
    }
    let (frac, e) = frexp(frac);
    let bits = frac.to_bits();
    let exp = exp as i64 + e as i64 + ((bits >> 52) & 0x7ff) as i64 - 1023;
    if exp < -1075 {
        return 0.0_f64.copysign(frac);
    }
    if exp > 1023 {
        return if frac < 0.0 {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    let (exp, m) = if exp < -1022 {
        (exp + 53, 1.0 / (1u64 << 53) as f64)
    } else {
        (exp, 1.0)
    };
    let bits = (bits & !(0x7ff << 52)) | (((exp + 1023) as u64) << 52);
    m * f64::from_bits(bits)
}

fn is_odd_int(x: f64) -> bool {
    if x.abs() >= (1u64 << 53) as f64 {
        return false;
    }
    x.trunc() == x && (x as i64) & 1 == 1
}

/// Go's `math.Pow`.
pub(crate) fn go_pow(x: f64, y: f64) -> f64 {
    if y == 0.0 || x == 1.0 {
        return 1.0;
    }
    if y == 1.0 {
        return x;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 {
        if y < 0.0 {
            return if x.is_sign_negative() && is_odd_int(y) {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            };
        }
        return if x.is_sign_negative() && is_odd_int(y) {
            x
        } else {
            0.0
        };
    }
    if y.is_infinite() {
        return if x == -1.0 {
            1.0
        } else if (x.abs() < 1.0) == (y > 0.0) {
            0.0
        } else {
            f64::INFINITY
        };
    }
    if x.is_infinite() {
        if x < 0.0 {
            return go_pow(1.0 / x, -y);
        }
        return if y < 0.0 { 0.0 } else { f64::INFINITY };
    }
    if y == 0.5 {
        return x.sqrt();
    }
    if y == -0.5 {
        return 1.0 / x.sqrt();
    }
    let (mut yi, mut yf) = (y.abs().trunc(), y.abs().fract());
    if yf != 0.0 && x < 0.0 {
        return f64::NAN;
    }
    if yi >= 9.223_372_036_854_776e18 {
        return if x == -1.0 {
            1.0
        } else if (x.abs() < 1.0) == (y > 0.0) {
            0.0
        } else {
            f64::INFINITY
        };
    }
    let mut a1 = 1.0;
    let mut ae: i64 = 0;
    if yf != 0.0 {
        if yf > 0.5 {
            yf -= 1.0;
            yi += 1.0;
        }
        a1 = exp(yf * log(x));
    }
    let (mut x1, xe) = frexp(x);
    let mut xe = xe as i64;
    let mut i = yi as i64;
    while i != 0 {
        if !(-(1 << 12)..=(1 << 12)).contains(&xe) {
            ae += xe;
            break;
        }
        if i & 1 == 1 {
            a1 *= x1;
            ae += xe;
        }
        x1 *= x1;
        xe <<= 1;
        if x1 < 0.5 {
            x1 += x1;
            xe -= 1;
        }
        i >>= 1;
    }
    if y < 0.0 {
        a1 = 1.0 / a1;
        ae = -ae;
    }
    ldexp(a1, ae.clamp(i32::MIN as i64, i32::MAX as i64) as i32)
}

mod elementary;

pub(crate) use elementary::{
    acos, acosh, asin, asinh, atan, atan2, atanh, cos, cosh, exp, log, sin, sinh, tan, tanh,
};

/// Go's `math.Log2`: exact for powers of two.
pub(crate) fn log2(x: f64) -> f64 {
    let (frac, exp) = frexp(x);
    if frac == 0.5 {
        return (exp - 1) as f64;
    }
    log(frac) * std::f64::consts::LOG2_E + exp as f64
}

/// Go's `math.Log10`.
pub(crate) fn log10(x: f64) -> f64 {
    log(x) * std::f64::consts::LOG10_E
}

/// One step of Kahan–Neumaier summation: returns the new sum and compensation.
pub(crate) fn kahan_sum_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Sorts as Go's `sort.Sort` does for up to 12 elements (an insertion sort, so the order
/// of ties and of NaNs is Go's); longer inputs get a stable sort with the same order.
pub(crate) fn go_sort<T>(v: &mut [T], less: impl Fn(&T, &T) -> bool) {
    if v.len() <= 12 {
        for i in 1..v.len() {
            let mut j = i;
            while j > 0 && less(&v[j], &v[j - 1]) {
                v.swap(j, j - 1);
                j -= 1;
            }
        }
    } else {
        v.sort_by(|a, b| {
            if less(a, b) {
                std::cmp::Ordering::Less
            } else if less(b, a) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_and_min_propagate_nan_like_go() {
        let check = |got: f64, want: f64| {
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "{got} != {want}"
            )
        };
        check(go_max(1.0, f64::NAN), f64::NAN);
        check(go_max(f64::NAN, f64::INFINITY), f64::INFINITY);
        check(go_max(-0.0, 0.0), 0.0);
        check(go_max(-0.0, -0.0), -0.0);
        check(go_min(f64::NAN, 1.0), f64::NAN);
        check(go_min(f64::NAN, f64::NEG_INFINITY), f64::NEG_INFINITY);
        check(go_min(0.0, -0.0), -0.0);
        check(go_min(2.0, 3.0), 2.0);
    }

    #[test]
    fn pow_follows_go() {
        let check = |x: f64, y: f64, want: f64| {
            let got = go_pow(x, y);
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "{x}^{y}: {got} != {want}"
            )
        };
        check(2.0, 10.0, 1024.0);
        check(2.0, -2.0, 0.25);
        check(-8.0, 1.0 / 3.0, f64::NAN);
        check(0.0, -1.0, f64::INFINITY);
        check(-0.0, -1.0, f64::NEG_INFINITY);
        check(-0.0, 3.0, -0.0);
        check(f64::NEG_INFINITY, 3.0, f64::NEG_INFINITY);
        check(f64::NEG_INFINITY, 2.0, f64::INFINITY);
        check(-1.0, f64::INFINITY, 1.0);
        check(0.5, f64::INFINITY, 0.0);
        check(4.0, 0.5, 2.0);
        // Go's algorithm is not correctly rounded: Prometheus answers 10^308 so.
        check(10.0, 308.0, 1.0000000000000006e308);
        check(10.0, 400.0, f64::INFINITY);
        check(2.0, -1074.0, 5e-324);
        check(2.0, -1080.0, 0.0);
        check(f64::NAN, 0.0, 1.0);
    }

    #[test]
    fn frexp_and_ldexp_round_trip() {
        for x in [
            1.0,
            3.5,
            -0.1,
            1e300,
            5e-324,
            2.2250738585072014e-308,
            123456.789,
        ] {
            let (f, e) = frexp(x);
            assert!((0.5..1.0).contains(&f.abs()), "{x}");
            assert_eq!(ldexp(f, e), x);
        }
        assert_eq!(log2(8.0), 3.0);
        assert_eq!(log10(1000.0), 3.0);
    }

    #[test]
    fn elementary_functions_follow_go() {
        let check = |got: f64, want: f64| {
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "{got} != {want}"
            )
        };
        // Values Prometheus 2.42 answered (they differ from libm's in the last bit).
        check(exp(0.19835725355908584), 1.219397950272641);
        check(exp(5.887589630449824), 360.53521309746696);
        check(exp(-746.0), 0.0);
        check(exp(710.0), f64::INFINITY);
        check(exp(f64::NEG_INFINITY), 0.0);
        check(log(1000.0) * std::f64::consts::LOG10_E, 3.0);
        check(acos(0.5), 1.0471975511965976);
        check(tan(1.0), 1.557407724654902);
        check(atan2(-4.0, 1.0), -1.3258176636680323);
        check(sin(0.0), 0.0);
        check(cos(f64::INFINITY), f64::NAN);
        check(atanh(1.0), f64::INFINITY);
        check(acosh(0.5), f64::NAN);
    }

    #[test]
    fn kahan_keeps_small_terms() {
        let (mut s, mut c) = (0.0, 0.0);
        for v in [1e100, 1.0, -1e100] {
            (s, c) = kahan_sum_inc(v, s, c);
        }
        assert_eq!(s + c, 1.0);
    }
}
