//! Query and path parameters shared by the read endpoints, parsed into store types with the
//! API's error codes: times (`from`/`to`), page cursors, call statuses and phone numbers.
//! Pure functions, tested here.

use axum::http::StatusCode;
use vaani_store::{CallStatus, Cursor, DEFAULT_CALL_LIMIT, MAX_CALL_LIMIT};

use super::error::ApiError;

/// The page size `?limit=`: 1..=500, default 50; `400 invalid_limit` otherwise.
pub(super) fn limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit.unwrap_or(DEFAULT_CALL_LIMIT) {
        limit @ 1..=MAX_CALL_LIMIT => Ok(limit),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_limit",
            format!("limit must be between 1 and {MAX_CALL_LIMIT}"),
        )),
    }
}

/// A time in a query: unix milliseconds (`1733390000000`) or an RFC 3339 timestamp
/// (`2026-12-05T07:00:00Z`, `2026-12-05T12:30:00.250+05:30`). `400 invalid_time` otherwise.
pub(super) fn time_ms(name: &str, text: &str) -> Result<i64, ApiError> {
    let text = text.trim();
    let parsed = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<i64>().ok()
    } else {
        rfc3339_ms(text)
    };
    parsed.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_time",
            format!("{name} must be unix milliseconds or an RFC 3339 timestamp"),
        )
    })
}

/// The `from`/`to` query pair as a half-open range `[from, to)` in unix ms;
/// `400 invalid_range` when `from` is after `to`.
pub(super) fn time_range(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let from = from.map(|text| time_ms("from", text)).transpose()?;
    let to = to.map(|text| time_ms("to", text)).transpose()?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_range",
            "from must not be after to",
        ));
    }
    Ok((from, to))
}

/// A page cursor given back by the client; `400 invalid_cursor` when it is not one the server
/// gave out.
pub(super) fn cursor(text: Option<&str>) -> Result<Option<Cursor>, ApiError> {
    text.map(|text| {
        Cursor::decode(text).map_err(|error| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", error.to_string())
        })
    })
    .transpose()
}

/// A call status (`completed`, `failed`, …); `400 invalid_status` otherwise.
pub(super) fn status(text: Option<&str>) -> Result<Option<CallStatus>, ApiError> {
    text.map(|text| {
        text.parse::<CallStatus>().map_err(|_| {
            let known: Vec<&str> = CallStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_status",
                format!("status must be one of {}", known.join(", ")),
            )
        })
    })
    .transpose()
}

/// A phone number in a query (`caller`, `dialled`), matched exactly against the stored one.
/// A leading space is read as `+`: an unescaped `+` in a query string decodes to a space.
/// `400 invalid_number` when empty.
pub(super) fn number_filter(name: &str, text: Option<&str>) -> Result<Option<String>, ApiError> {
    text.map(|text| {
        let number = match text.strip_prefix(' ') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => format!("+{rest}"),
            _ => text.trim().to_owned(),
        };
        if number.is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_number",
                format!("{name} must not be empty"),
            ));
        }
        Ok(number)
    })
    .transpose()
}

/// A caller's phone number in a path: E.164, `+` then 7 to 15 digits, the first not 0
/// (send `+` as `%2B` or as is; both decode to `+` in a path). `400 invalid_number` otherwise.
pub(super) fn e164(text: &str) -> Result<&str, ApiError> {
    let digits = text.strip_prefix('+').unwrap_or("");
    let valid = (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if valid {
        Ok(text)
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_number",
            "the phone number must be E.164: + and 7 to 15 digits, e.g. +919800000001",
        ))
    }
}

/// An RFC 3339 timestamp (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, `T` or space, `z`
/// allowed) as unix ms; fractions beyond milliseconds are cut. `None` if malformed.
fn rfc3339_ms(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = bytes.get(range)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators
        .iter()
        .any(|&(at, sep)| bytes.get(at) != Some(&sep))
        || !matches!(bytes.get(10), Some(b'T' | b't' | b' '))
    {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut at = 19;
    let mut millis = 0;
    if bytes.get(at) == Some(&b'.') {
        let digits = bytes[at + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        for (i, digit) in bytes[at + 1..at + 1 + digits.min(3)].iter().enumerate() {
            millis += i64::from(digit - b'0') * 10_i64.pow(2 - i as u32);
        }
        at += 1 + digits;
    }
    let offset_minutes = match bytes.get(at)? {
        b'Z' | b'z' if at + 1 == bytes.len() => 0,
        sign @ (b'+' | b'-') if at + 6 == bytes.len() && bytes[at + 3] == b':' => {
            let (hours, minutes) = (number(at + 1..at + 3)?, number(at + 4..at + 6)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 60 + minutes;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given date of the proleptic Gregorian calendar
/// (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(error: ApiError) -> String {
        error.code().to_owned()
    }

    #[test]
    fn times_are_unix_ms_or_rfc3339() {
        assert_eq!(time_ms("from", "1733390000123").unwrap(), 1_733_390_000_123);
        assert_eq!(time_ms("from", "0").unwrap(), 0);
        assert_eq!(time_ms("from", "1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            time_ms("from", "2024-12-05T09:13:20Z").unwrap(),
            1_733_390_000_000
        );
        assert_eq!(
            time_ms("from", "2024-12-05T14:43:20.123+05:30").unwrap(),
            1_733_390_000_123
        );
        assert_eq!(
            time_ms("from", "2024-12-05 09:13:20.1239z").unwrap(),
            1_733_390_000_123
        );
        assert_eq!(
            time_ms("from", "2024-02-29T00:00:00-01:00").unwrap(),
            1_709_164_800_000 + 3_600_000
        );
        assert_eq!(time_ms("to", "1969-12-31T23:59:59Z").unwrap(), -1_000);
        for bad in [
            "",
            "-5",
            "yesterday",
            "99999999999999999999",
            "2024-12-05",
            "2024-12-05T09:13:20",
            "2024-12-05T09:13:20+0530",
            "2024-13-05T09:13:20Z",
            "2023-02-29T09:13:20Z",
            "2024-12-05T24:00:00Z",
            "2024-12-05T09:13:20.Z",
            "2024-12-05T09:13:20Zjunk",
            "2024-12-05T09:13:20+05:3x",
            "２０２４-12-05T09:13:20Z",
        ] {
            assert_eq!(
                code(time_ms("from", bad).unwrap_err()),
                "invalid_time",
                "{bad}"
            );
        }
    }

    #[test]
    fn limits_are_1_to_500_default_50() {
        assert_eq!(limit(None).unwrap(), 50);
        assert_eq!(limit(Some(1)).unwrap(), 1);
        assert_eq!(limit(Some(500)).unwrap(), 500);
        for bad in [0, 501, u32::MAX] {
            assert_eq!(code(limit(Some(bad)).unwrap_err()), "invalid_limit");
        }
    }

    #[test]
    fn a_range_must_not_run_backwards() {
        assert_eq!(time_range(None, None).unwrap(), (None, None));
        assert_eq!(
            time_range(Some("5"), Some("5")).unwrap(),
            (Some(5), Some(5))
        );
        assert_eq!(
            code(time_range(Some("6"), Some("5")).unwrap_err()),
            "invalid_range"
        );
        assert_eq!(
            code(time_range(Some("x"), Some("5")).unwrap_err()),
            "invalid_time"
        );
    }

    #[test]
    fn statuses_cursors_and_numbers() {
        assert_eq!(
            status(Some("no_answer")).unwrap(),
            Some(CallStatus::NoAnswer)
        );
        assert_eq!(status(None).unwrap(), None);
        for bad in ["", "done", "Completed"] {
            assert_eq!(code(status(Some(bad)).unwrap_err()), "invalid_status");
        }
        let given = Cursor {
            at_ms: 5,
            id: "x".to_owned(),
        };
        assert_eq!(cursor(Some(&given.encode())).unwrap(), Some(given));
        assert_eq!(code(cursor(Some("nope")).unwrap_err()), "invalid_cursor");
        assert_eq!(
            number_filter("caller", Some(" 919800000001")).unwrap(),
            Some("+919800000001".to_owned())
        );
        assert_eq!(
            number_filter("caller", Some("+919800000001")).unwrap(),
            Some("+919800000001".to_owned())
        );
        assert_eq!(
            number_filter("caller", Some("alice")).unwrap(),
            Some("alice".to_owned())
        );
        assert_eq!(
            code(number_filter("caller", Some(" ")).unwrap_err()),
            "invalid_number"
        );
        assert_eq!(e164("+919800000001").unwrap(), "+919800000001");
        for bad in [
            "919800000001",
            "+0919800000001",
            "+91980",
            "+9198000000012345",
            "+91 98000",
            "",
            "+",
        ] {
            assert_eq!(code(e164(bad).unwrap_err()), "invalid_number", "{bad}");
        }
    }
}
