//! Summaries of samples (min/median/max), ratios of alternating pairs, and
//! the RFC 3339 timestamps Docker reports, as Unix ms.

use serde::Serialize;

/// min / median / max of some samples (ms or a ratio).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

/// The summary of `xs` (`None` when empty; NaNs are ignored).
pub fn summary(xs: &[f64]) -> Option<Summary> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Summary {
        n,
        min: v[0],
        median,
        max: v[n - 1],
    })
}

/// Summary of the defined values.
pub fn summary_of(xs: impl IntoIterator<Item = Option<f64>>) -> Option<Summary> {
    summary(&xs.into_iter().flatten().collect::<Vec<_>>())
}

/// `a[i] / b[i]` for each pair where both exist.
pub fn ratios(a: &[Option<f64>], b: &[Option<f64>]) -> Vec<f64> {
    a.iter()
        .zip(b)
        .filter_map(|(x, y)| Some((*x)? / (*y)?))
        .filter(|r| r.is_finite())
        .collect()
}

/// `2026-11-23T20:01:50.512345678Z` (or with a `+00:00` offset) as ms since
/// the Unix epoch; `None` for anything else, e.g. Docker's zero time.
pub fn rfc3339_ms(s: &str) -> Option<f64> {
    let (date, rest) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, mo, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    if y < 1971 {
        return None;
    }
    let (time, offset_s) = if let Some(t) = rest.strip_suffix('Z') {
        (t, 0)
    } else {
        let i = rest.rfind(['+', '-'])?;
        let (t, off) = rest.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':')?;
        (
            t,
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60),
        )
    };
    let mut t = time.split(':');
    let (h, mi) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let sec: f64 = t.next()?.parse().ok()?;
    let days = days_from_civil(y, mo, day);
    let secs = days * 86_400 + h * 3600 + mi * 60 - offset_s;
    Some(secs as f64 * 1000.0 + sec * 1000.0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_even_and_odd_counts() {
        let s = summary(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.min, s.median, s.max, s.n), (1.0, 2.0, 3.0, 3));
        assert_eq!(summary(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert!(summary(&[]).is_none());
    }

    #[test]
    fn pair_ratios_skip_missing_samples() {
        let r = ratios(
            &[Some(2.0), None, Some(3.0)],
            &[Some(4.0), Some(1.0), Some(3.0)],
        );
        assert_eq!(r, vec![0.5, 1.0]);
    }

    #[test]
    fn docker_timestamps_parse() {
        assert_eq!(rfc3339_ms("1970-01-02T00:00:01Z"), None);
        let a = rfc3339_ms("2026-11-23T20:01:50.5Z").unwrap();
        let b = rfc3339_ms("2026-11-23T20:01:51.25Z").unwrap();
        assert!((b - a - 750.0).abs() < 1e-6);
        let c = rfc3339_ms("2026-11-23T21:01:51.25+01:00").unwrap();
        assert!((c - b).abs() < 1e-6);
        // 2000-03-01 is day 11017 of the epoch
        assert_eq!(
            rfc3339_ms("2000-03-01T00:00:00Z"),
            Some(11017.0 * 86_400_000.0)
        );
        assert_eq!(rfc3339_ms("0001-01-01T00:00:00Z"), None);
    }
}
