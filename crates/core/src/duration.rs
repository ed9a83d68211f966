//! Durations as text for configuration files: `"250ms"`, `"1.5s"`,
//! `"1m30s"`, `"forever"`.
//!
//! Every weft configuration type that has serde writes its durations this
//! way and reads them back exactly: [`format()`] picks the largest unit that
//! is exact, and [`parse`] sums whole or decimal numbers with units, in
//! integer nanoseconds, refusing anything it would have to round.
//! `Duration::MAX` is `"forever"`, weft's "wait as long as it takes".
//!
//! ```
//! use std::time::Duration;
//! use weft_core::duration;
//!
//! assert_eq!(duration::parse("1m30s")?, Duration::from_secs(90));
//! assert_eq!(duration::parse("2.5ms")?, Duration::from_micros(2500));
//! assert_eq!(duration::format(Duration::from_micros(2500)), "2500us");
//! assert_eq!(duration::parse("forever")?, Duration::MAX);
//! assert!(duration::parse("10").is_err()); // a number needs its unit
//! # Ok::<(), weft_core::CoreError>(())
//! ```
//!
//! With serde: `#[serde(with = "weft_core::duration")]` on a `Duration`
//! field, `#[serde(with = "weft_core::duration::option")]` on an
//! `Option<Duration>` (`null` for `None`).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

use crate::CoreError;

/// The text for `Duration::MAX`.
pub const FOREVER: &str = "forever";

const UNITS: [(&str, u128); 9] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
    ("w", 604_800_000_000_000),
];

/// `d` as text that [`parse`] reads back exactly: a whole number in the
/// largest unit that divides it (`"90s"`, `"2500us"`, `"0s"`), or
/// `"forever"` for `Duration::MAX`.
pub fn format(d: Duration) -> String {
    if d == Duration::MAX {
        return FOREVER.to_string();
    }
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    let (unit, size) = [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ]
    .into_iter()
    .find(|&(_, size)| nanos.is_multiple_of(size))
    .unwrap_or(("ns", 1));
    format!("{}{unit}", nanos / size)
}

/// Reads a duration: one or more numbers, each with a unit (`ns`, `us` or
/// `µs`, `ms`, `s`, `m`, `h`, `d`, `w`), summed (`"1h30m"`); a number may
/// have a decimal part (`"1.5s"`). `"forever"` is `Duration::MAX`.
///
/// # Errors
///
/// [`CoreError::BadDuration`] naming the text and what is wrong: no unit,
/// an unknown unit, no number, a value finer than a nanosecond, or one
/// above `Duration::MAX` (write `"forever"`).
pub fn parse(text: &str) -> Result<Duration, CoreError> {
    let bad = |reason| CoreError::BadDuration {
        input: text.to_string(),
        reason,
    };
    let s = text.trim();
    if s == FOREVER {
        return Ok(Duration::MAX);
    }
    if s.is_empty() {
        return Err(bad("it is empty"));
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        if number.is_empty() {
            return Err(bad("a unit has no number before it"));
        }
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        if unit.is_empty() {
            return Err(bad(
                "a number has no unit (ns, us, ms, s, m, h, d, w), e.g. \"250ms\"",
            ));
        }
        let size = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|&(_, size)| size)
            .ok_or_else(|| bad("unknown unit: use ns, us, ms, s, m, h, d or w"))?;
        total = total
            .checked_add(nanos_of(number, size).map_err(bad)?)
            .ok_or_else(|| bad(TOO_BIG))?;
        rest = tail;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| bad(TOO_BIG))?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

const TOO_BIG: &str = "it is above the longest duration: write \"forever\"";

/// `number` (digits, at most one `.`) times `size` nanoseconds, if exact.
fn nanos_of(number: &str, size: u128) -> Result<u128, &'static str> {
    const SYNTAX: &str = "a number is not a plain decimal (digits, at most one '.')";
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return Err(SYNTAX);
    }
    // Digits only here, so a failed parse is an overflow.
    let digits = |s: &str| -> Result<u128, &'static str> {
        if s.is_empty() {
            Ok(0)
        } else {
            s.parse::<u128>().map_err(|_| TOO_BIG)
        }
    };
    let mut nanos = digits(whole)?.checked_mul(size).ok_or(TOO_BIG)?;
    let fraction = fraction.trim_end_matches('0');
    if !fraction.is_empty() {
        let finer = "a number is finer than a nanosecond";
        let scale = u32::try_from(fraction.len())
            .ok()
            .and_then(|len| 10u128.checked_pow(len))
            .ok_or(finer)?;
        let part = digits(fraction)
            .map_err(|_| finer)?
            .checked_mul(size)
            .ok_or(finer)?;
        if !part.is_multiple_of(scale) {
            return Err(finer);
        }
        nanos = nanos.checked_add(part / scale).ok_or(TOO_BIG)?;
    }
    Ok(nanos)
}

/// Writes a `Duration` as [`format()`] does, for `#[serde(with = "weft_core::duration")]`.
///
/// # Errors
///
/// Whatever the serializer gives.
pub fn serialize<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*d))
}

/// Reads a `Duration` as [`parse`] does.
///
/// # Errors
///
/// A text that [`parse`] refuses, or a value that is not a string.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// `Option<Duration>` as text or `null`, for
/// `#[serde(with = "weft_core::duration::option")]`.
pub mod option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `Some(d)` as [`super::format`] does, `None` as `null`.
    ///
    /// # Errors
    ///
    /// Whatever the serializer gives.
    pub fn serialize<S: Serializer>(
        d: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => serializer.serialize_str(&super::format(*d)),
            None => serializer.serialize_none(),
        }
    }

    /// Reads text as [`super::parse`] does, `null` as `None`.
    ///
    /// # Errors
    ///
    /// A text that [`super::parse`] refuses.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = <Option<std::borrow::Cow<'de, str>>>::deserialize(deserializer)?;
        text.map(|t| super::parse(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_duration_round_trips_through_text() {
        for d in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_nanos(1_001),
            Duration::from_micros(2_500),
            Duration::from_millis(250),
            Duration::from_secs(90),
            Duration::from_secs(3600 * 49),
            Duration::new(u64::MAX, 999_999_998),
            Duration::MAX,
        ] {
            assert_eq!(parse(&format(d)).unwrap(), d, "{}", format(d));
        }
        assert_eq!(format(Duration::from_secs(90)), "90s");
        assert_eq!(format(Duration::from_secs(120)), "2m");
        assert_eq!(format(Duration::MAX), "forever");
    }

    proptest::proptest! {
        #[test]
        fn any_duration_round_trips_through_text(secs: u64, nanos in 0u32..1_000_000_000) {
            let d = Duration::new(secs, nanos);
            proptest::prop_assert_eq!(parse(&format(d)).unwrap(), d);
        }
    }

    #[test]
    fn text_sums_units_and_reads_decimals_exactly() {
        let cases = [
            ("1h30m", Duration::from_secs(5400)),
            ("1.5s", Duration::from_millis(1500)),
            (".5s", Duration::from_millis(500)),
            ("2.s", Duration::from_secs(2)),
            ("100µs", Duration::from_micros(100)),
            ("1w1d", Duration::from_secs(8 * 86_400)),
            (" 7ns ", Duration::from_nanos(7)),
            ("0.000000001s", Duration::from_nanos(1)),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn bad_text_is_refused_by_what_is_wrong() {
        let reason = |text: &str| match parse(text) {
            Err(CoreError::BadDuration { input, reason }) => {
                assert_eq!(input, text);
                reason
            }
            other => panic!("{text}: {other:?}"),
        };
        assert!(reason("10").contains("no unit"));
        assert!(reason("").contains("empty"));
        assert!(reason("ms").contains("no number"));
        assert!(reason("5 parsecs").contains("unknown unit"));
        assert!(reason("1.2.3s").contains("plain decimal"));
        assert!(reason("1.5ns").contains("finer"));
        assert!(reason(".s").contains("plain decimal"));
        assert!(reason("-1s").contains("no number"));
        assert!(reason("18446744073709551616s").contains("forever"));
        assert!(reason("99999999999999999999999999999999999999999w").contains("forever"));
        assert!(reason("1.0000000000000000000000000000000000000000001s").contains("finer"));
        assert_eq!(
            parse("1.50000000000000000000000000000000000000000s"),
            Ok(Duration::from_millis(1500))
        );
        assert!(reason(&format!("{}s1s", u64::MAX)).contains("forever"));
    }

    #[test]
    fn serde_reads_and_writes_text() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Config {
            #[serde(with = "crate::duration")]
            every: Duration,
            #[serde(with = "crate::duration::option", default)]
            timeout: Option<Duration>,
        }
        let c = Config {
            every: Duration::from_millis(1500),
            timeout: None,
        };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"every":"1500ms","timeout":null}"#);
        assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), c);
        let given: Config = serde_json::from_str(r#"{"every":"forever","timeout":"2s"}"#).unwrap();
        assert_eq!(given.every, Duration::MAX);
        assert_eq!(given.timeout, Some(Duration::from_secs(2)));
        let missing: Config = serde_json::from_str(r#"{"every":"1s"}"#).unwrap();
        assert_eq!(missing.timeout, None);
        let err = serde_json::from_str::<Config>(r#"{"every":"10"}"#).unwrap_err();
        assert!(err.to_string().contains("no unit"), "{err}");
        let err = serde_json::from_str::<Config>(r#"{"every":10}"#).unwrap_err();
        assert!(err.to_string().contains("string"), "{err}");
    }
}
