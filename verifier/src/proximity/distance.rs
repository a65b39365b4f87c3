//! Distances: the bound light in vacuum puts on a round trip, and great-circle distances between coordinates.
//!
//! `d_max_km = min_rtt / 2 × c` with `c` = 299 792.458 km/s exactly (0.299792458 km/µs), rounded *up* to a whole
//! kilometre: the adversary is the host's operator, who may own paths faster than fibre, so only `c` gives a bound
//! that is never too small, and rounding up keeps it so. (299.79 km/ms, `c` rounded down, would be 8 ppm too small.)
//! Great-circle distances use the haversine formula on a sphere of radius 6371.0 km (the mean Earth radius); against
//! the WGS-84 ellipsoid that is off by at most about 0.56 %, which the consistency checks allow for
//! ([`SPHERE_TOLERANCE`]).

/// Light in vacuum, kilometres per second.
pub const C_KM_PER_S: f64 = 299_792.458;
/// A planning estimate for light in optical fibre (refractive index ≈ 1.47), km per ms one way. Never a bound.
pub const FIBRE_KM_PER_MS: f64 = 204.0;
/// Mean Earth radius, km.
pub const EARTH_RADIUS_KM: f64 = 6371.0;
/// Relative error the spherical model may make against the ellipsoid, plus 1 km of site extent: a point is outside a
/// circle only when it is further than `radius × (1 + 0.006) + 1 km`.
pub const SPHERE_TOLERANCE: f64 = 0.006;

/// The distance bound of a minimum round trip of `min_rtt_us` microseconds, km, rounded up.
pub fn d_max_km(min_rtt_us: u64) -> u64 {
    // rtt_us / 2 × 0.299792458 km = rtt_us × 299 792 458 / 2 000 000 000, in integers so nothing rounds down.
    let num = u128::from(min_rtt_us) * 299_792_458;
    let km = num.div_ceil(2_000_000_000);
    u64::try_from(km).unwrap_or(u64::MAX)
}

/// The fibre estimate of the same round trip, km (shown beside the bound, labelled as an estimate).
pub fn fibre_estimate_km(min_rtt_us: u64) -> f64 {
    min_rtt_us as f64 / 2000.0 * FIBRE_KM_PER_MS
}

/// Great-circle distance between two `[lat, lon]` points in degrees, km.
pub fn haversine_km(a: [f64; 2], b: [f64; 2]) -> f64 {
    let (la1, lo1) = (a[0].to_radians(), a[1].to_radians());
    let (la2, lo2) = (b[0].to_radians(), b[1].to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// `[lat, lon]` in millionths of a degree to degrees.
pub fn from_micro(c: [i64; 2]) -> [f64; 2] {
    [c[0] as f64 / 1e6, c[1] as f64 / 1e6]
}

/// Whether `point` is certainly outside the circle of `radius_km` around `centre` (allowing for the model error).
pub fn certainly_outside(centre: [f64; 2], radius_km: u64, point: [f64; 2]) -> bool {
    haversine_km(centre, point) > radius_km as f64 * (1.0 + SPHERE_TOLERANCE) + 1.0
}

/// Whether two circles certainly do not meet.
pub fn certainly_disjoint(a: ([f64; 2], u64), b: ([f64; 2], u64)) -> bool {
    haversine_km(a.0, b.0) > (a.1 + b.1) as f64 * (1.0 + SPHERE_TOLERANCE) + 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_uses_c_and_rounds_up() {
        // 1 ms round trip: 0.5 ms one way at c = 149.896229 km → 150.
        assert_eq!(d_max_km(1_000), 150);
        // 20 ms (10 ms each way added): 2997.92458 → 2998 km, over 2,000.
        assert_eq!(d_max_km(20_000), 2998);
        assert_eq!(d_max_km(0), 0);
        assert_eq!(d_max_km(1), 1, "any delay is at least a kilometre");
        // Never below the exact value.
        for us in [7u64, 99, 1234, 65_432, 10_000_000] {
            let exact = us as f64 / 2.0 * C_KM_PER_S / 1e6;
            assert!(d_max_km(us) as f64 >= exact, "{us}");
            assert!((d_max_km(us) as f64) < exact + 1.0, "{us}");
        }
        assert!((fibre_estimate_km(1_000) - 102.0).abs() < 1e-9);
    }

    #[test]
    fn haversine_gives_known_city_distances() {
        // Frankfurt (50.1109, 8.6821) to Paris (48.8566, 2.3522) and to Ashburn (39.0438, -77.4874), computed
        // independently in Python (math.asin/sqrt, R = 6371): 477.892 km and 6548.890 km.
        let fra = [50.1109, 8.6821];
        let par = [48.8566, 2.3522];
        let iad = [39.0438, -77.4874];
        assert!(
            (haversine_km(fra, par) - 477.892).abs() < 0.01,
            "{}",
            haversine_km(fra, par)
        );
        assert!(
            (haversine_km(fra, iad) - 6548.890).abs() < 0.01,
            "{}",
            haversine_km(fra, iad)
        );
        assert_eq!(haversine_km(fra, fra), 0.0);
        // Antipodes: half the circumference.
        let half = std::f64::consts::PI * EARTH_RADIUS_KM;
        assert!((haversine_km([0.0, 0.0], [0.0, 180.0]) - half).abs() < 1e-6);
    }

    #[test]
    fn circles_are_judged_with_the_model_tolerance() {
        let fra = [50.1109, 8.6821];
        let par = [48.8566, 2.3522];
        assert!(!certainly_outside(fra, 480, par));
        assert!(!certainly_outside(fra, 476, par), "within the tolerance");
        assert!(certainly_outside(fra, 400, par));
        assert!(!certainly_disjoint((fra, 300), (par, 200)));
        assert!(certainly_disjoint((fra, 100), (par, 100)));
    }
}
