//! UTC times as text, without a calendar crate: the one formatter of the
//! project (report names, report dates, image labels, the chaos verbs'
//! wall-clock times).

use std::time::SystemTime;

/// `YYYYMMDDTHHMMSSZ` (for directory names).
pub fn utc_compact(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, _) = utc_parts(t);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_iso(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, _) = utc_parts(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `HH:MM:SS.mmm` (the time of day, for lines printed as things happen).
pub fn utc_clock(t: SystemTime) -> String {
    let (_, _, _, h, mi, s, ms) = utc_parts(t);
    format!("{h:02}:{mi:02}:{s:02}.{ms:03}")
}

fn utc_parts(t: SystemTime) -> (i64, u32, u32, u64, u64, u64, u32) {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    let ms = since.subsec_millis();
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60, ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn clock_is_utc_with_millis() {
        let t = UNIX_EPOCH + Duration::from_millis(3_600_000 + 62_234);
        assert_eq!(utc_clock(t), "01:01:02.234");
        assert_eq!(utc_iso(t), "1970-01-01T01:01:02Z");
    }
}
