//! Durations and times: `timedelta`s, seconds, aware `datetime`s to and
//! from integer milliseconds since the epoch (see the module above for the
//! two exact paths a `datetime` takes).

use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyInt, PyTuple};

use super::args::{int64, type_name};
use crate::chunks::record::{MAX_TIME_MS, MIN_TIME_MS};
use crate::python::imports;
use crate::sys::clock::now_ms;

/// A `timedelta` as whole milliseconds (rounded toward minus infinity),
/// computed exactly by `datetime`'s integer arithmetic rather than through a
/// float. Every timedelta fits: its range is under ±10^17 ms.
pub fn timedelta_ms(value: &Bound<'_, PyAny>, field: &str) -> PyResult<i64> {
    let py = value.py();
    let api = imports::get(py)?;
    if !value.is_instance(api.timedelta.bind(py))? {
        return Err(PyTypeError::new_err(format!(
            "{field}: expected a timedelta, got {}",
            type_name(value)
        )));
    }
    value.floor_div(api.one_ms.bind(py))?.extract()
}

/// A positive `timedelta` of at least 1 ms (a lease or a pause). Whether the
/// lease's end is representable is the core's check, which knows "now".
pub fn positive_duration(value: &Bound<'_, PyAny>, field: &str) -> PyResult<Duration> {
    let ms = timedelta_ms(value, field)?;
    match u64::try_from(ms) {
        Ok(ms) if ms >= 1 => Ok(Duration::from_millis(ms)),
        _ => Err(PyValueError::new_err(format!(
            "{field}: must be at least 1 millisecond"
        ))),
    }
}

/// The error for a time in milliseconds outside what reads back as a
/// `datetime` (years 1 to 9999, UTC).
pub fn check_time_ms(ms: i64, field: &str) -> PyResult<i64> {
    if (MIN_TIME_MS..=MAX_TIME_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(PyValueError::new_err(format!(
            "{field}: out of range: must lie within 0001-01-01T00:00:00Z .. \
             9999-12-31T23:59:59.999Z once converted to UTC"
        )))
    }
}

/// Seconds as a `Duration`, for settings given as a float: finite, at least
/// zero and at most `max`; a non-number is a `TypeError`.
pub fn seconds(value: &Bound<'_, PyAny>, field: &str, max: Duration) -> PyResult<Duration> {
    let seconds: f64 = value.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "{field}: expected a number of seconds, got {}",
            type_name(value)
        ))
    })?;
    if !(seconds.is_finite() && seconds >= 0.0) {
        return Err(PyValueError::new_err(format!(
            "{field}: must be a finite number >= 0"
        )));
    }
    match Duration::try_from_secs_f64(seconds) {
        Ok(d) if d <= max => Ok(d),
        _ => Err(PyValueError::new_err(format!(
            "{field}: must be at most {} seconds",
            max.as_secs()
        ))),
    }
}

/// An optional positive `timedelta` (a lease), `default` when `None`.
pub fn opt_positive_duration(
    value: Option<&Bound<'_, PyAny>>,
    field: &str,
    default: Duration,
) -> PyResult<Duration> {
    value.map_or(Ok(default), |v| positive_duration(v, field))
}

/// Milliseconds since the epoch of an aware `datetime`; `field` names the
/// argument in the `TypeError` / `ValueError` raised for anything else.
///
/// Only times that read back are accepted: `datetime.max` at UTC-23:59 is
/// past 9999-12-31 in UTC, and [`from_ms`] could not build it again, so it
/// is a `ValueError` here rather than a stored value nobody can read.
pub fn to_ms(value: &Bound<'_, PyAny>, field: &str) -> PyResult<i64> {
    datetime_ms(value, field, "an aware datetime")
}

/// A time argument of `Chunk(...)`: an aware `datetime` ([`to_ms`]) or
/// integer milliseconds since the epoch (an `int`, not a `bool`), each held
/// to the range that reads back.
pub fn time_or_ms(value: &Bound<'_, PyAny>, field: &str) -> PyResult<i64> {
    if value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>() {
        return check_time_ms(int64(value, field)?, field);
    }
    datetime_ms(value, field, "an aware datetime or int milliseconds")
}

/// [`time_or_ms`] for an optional argument.
pub fn opt_time_or_ms(value: Option<&Bound<'_, PyAny>>, field: &str) -> PyResult<Option<i64>> {
    value.map(|v| time_or_ms(v, field)).transpose()
}

/// [`to_ms`], naming what was `expected` in the `TypeError`.
fn datetime_ms(value: &Bound<'_, PyAny>, field: &str, expected: &str) -> PyResult<i64> {
    let py = value.py();
    let api = imports::get(py)?;
    let ms = if value.get_type().is(api.datetime.bind(py)) {
        match exact_datetime_ms(value, api)? {
            Converted::Ms(ms) => ms,
            Converted::Naive => return Err(naive(field)),
            Converted::Unusual => datetime_arithmetic_ms(value, api, field)?,
        }
    } else if value.is_instance(api.datetime.bind(py))? {
        datetime_arithmetic_ms(value, api, field)?
    } else {
        return Err(PyTypeError::new_err(format!(
            "{field}: expected {expected}, got {}",
            type_name(value)
        )));
    };
    check_time_ms(ms, field)
}

fn naive(field: &str) -> PyErr {
    PyValueError::new_err(format!(
        "{field}: naive datetime; give it a timezone (e.g. tzinfo=timezone.utc)"
    ))
}

/// What [`exact_datetime_ms`] made of a `datetime`.
enum Converted {
    /// Milliseconds since the epoch, not yet range-checked.
    Ms(i64),
    /// No tzinfo, or one whose `utcoffset()` is None.
    Naive,
    /// A shape the fast path does not vouch for: use the arithmetic.
    Unusual,
}

/// The fast path of [`to_ms`] for a `datetime` of the exact type: the C
/// method `__reduce__` returns `(datetime, (state, tzinfo))`, where `state`
/// is the 10-byte pickle form of the wall-clock fields (year as 2 bytes
/// big-endian, month, day, hour, minute, second, microsecond as 3 bytes
/// big-endian) and the tzinfo is absent for a naive datetime. The offset is
/// 0 for `timezone.utc` (`timezone` cannot be subclassed, so identity is
/// enough); any other zone answers `utcoffset()`, which applies `fold` and
/// the ±24 h check exactly as the arithmetic does.
fn exact_datetime_ms(value: &Bound<'_, PyAny>, api: &imports::Imports) -> PyResult<Converted> {
    let py = value.py();
    let reduced = value.call_method0(pyo3::intern!(py, "__reduce__"))?;
    let Some(args) = reduced
        .cast::<PyTuple>()
        .ok()
        .filter(|t| t.len() == 2)
        .and_then(|t| t.get_item(1).ok())
        .and_then(|a| a.cast_into::<PyTuple>().ok())
    else {
        return Ok(Converted::Unusual);
    };
    let Some(state) = args.get_item(0).ok() else {
        return Ok(Converted::Unusual);
    };
    let fields = match state.cast::<PyBytes>() {
        Ok(bytes) => <[u8; 10]>::try_from(bytes.as_bytes()).ok(),
        Err(_) => None,
    };
    // Later pickle protocols add 128 to the month for fold = 1; protocol 2
    // (what `__reduce__` uses) does not, but only a real month is trusted.
    let Some([yh, yl, month @ 1..=12, day, hour, minute, second, u2, u1, u0]) = fields else {
        return Ok(Converted::Unusual);
    };
    let days = days_from_civil(
        i64::from(u16::from_be_bytes([yh, yl])),
        i64::from(month),
        i64::from(day),
    );
    let seconds = days * 86_400 + i64::from(hour) * 3_600 + i64::from(minute) * 60;
    let local_us =
        (seconds + i64::from(second)) * 1_000_000 + i64::from(u32::from_be_bytes([0, u2, u1, u0]));
    let offset_us = match args.len() {
        1 => return Ok(Converted::Naive),
        2 => {
            let tz = args.get_item(1)?;
            if tz.is(api.utc.bind(py)) {
                0
            } else if tz.is_none() {
                return Ok(Converted::Naive);
            } else {
                let offset = value.call_method0(pyo3::intern!(py, "utcoffset"))?;
                if offset.is_none() {
                    return Ok(Converted::Naive);
                }
                match exact_timedelta_us(&offset, api)? {
                    Some(us) => us,
                    None => return Ok(Converted::Unusual),
                }
            }
        }
        _ => return Ok(Converted::Unusual),
    };
    // Years 1..=9999 and |offset| < 1 day: |local_us - offset_us| < 2^59.
    Ok(Converted::Ms((local_us - offset_us).div_euclid(1_000)))
}

/// Microseconds of a `timedelta` of the exact type, from its C `__reduce__`
/// (`(timedelta, (days, seconds, microseconds))`); None for anything else.
fn exact_timedelta_us(value: &Bound<'_, PyAny>, api: &imports::Imports) -> PyResult<Option<i64>> {
    let py = value.py();
    if !value.get_type().is(api.timedelta.bind(py)) {
        return Ok(None);
    }
    let reduced = value.call_method0(pyo3::intern!(py, "__reduce__"))?;
    let fields = reduced
        .cast::<PyTuple>()
        .ok()
        .filter(|t| t.len() == 2)
        .and_then(|t| t.get_item(1).ok())
        .and_then(|a| a.extract::<(i64, i64, i64)>().ok());
    // Only called for a utcoffset (validated by `datetime` to lie within
    // ±24 h), so the products cannot overflow.
    Ok(fields.map(|(days, seconds, us)| (days * 86_400 + seconds) * 1_000_000 + us))
}

/// Days from 1970-01-01 to year-month-day in the proleptic Gregorian
/// calendar `datetime` uses (H. Hinnant's `days_from_civil`): exact for
/// every date, negative before the epoch.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The slow, general path of [`to_ms`]: `datetime`'s own arithmetic, for
/// any `datetime` (subclasses included, whatever they override).
fn datetime_arithmetic_ms(
    value: &Bound<'_, PyAny>,
    api: &imports::Imports,
    field: &str,
) -> PyResult<i64> {
    let py = value.py();
    if value
        .call_method0(pyo3::intern!(py, "utcoffset"))?
        .is_none()
    {
        return Err(naive(field));
    }
    // Exact and always within i64: any two datetimes are < 2^49 ms apart.
    value
        .sub(api.epoch.bind(py))?
        .floor_div(api.one_ms.bind(py))?
        .extract()
}

/// Optional variant of [`to_ms`].
pub fn opt_to_ms(value: Option<&Bound<'_, PyAny>>, field: &str) -> PyResult<Option<i64>> {
    value.map(|v| to_ms(v, field)).transpose()
}

/// Milliseconds for a point in time given as an aware `datetime` or as a
/// `timedelta` from now (which may be negative: a time already past). Either
/// must land within the range a `datetime` reads back.
pub fn datetime_or_delay_ms(value: &Bound<'_, PyAny>, field: &str) -> PyResult<i64> {
    let py = value.py();
    if value.is_instance(imports::get(py)?.timedelta.bind(py))? {
        let delay = timedelta_ms(value, field)?;
        // |delay| < 10^17 and now < 10^14, so the sum cannot overflow.
        return check_time_ms(now_ms() + delay, field);
    }
    to_ms(value, field).map_err(|e| {
        if e.is_instance_of::<PyTypeError>(py) {
            PyTypeError::new_err(format!(
                "{field}: expected an aware datetime or a timedelta"
            ))
        } else {
            e
        }
    })
}

/// An aware UTC `datetime` for `ms` milliseconds since the epoch.
pub fn from_ms(py: Python<'_>, ms: i64) -> PyResult<Bound<'_, PyAny>> {
    let api = imports::get(py)?;
    let delta = api.timedelta.bind(py).call1(PyTuple::new(
        py,
        [0, ms.div_euclid(1000), ms.rem_euclid(1000) * 1000],
    )?)?;
    api.epoch.bind(py).add(delta)
}

/// Optional variant of [`from_ms`].
pub fn opt_from_ms(py: Python<'_>, ms: Option<i64>) -> PyResult<Option<Bound<'_, PyAny>>> {
    ms.map(|ms| from_ms(py, ms)).transpose()
}
