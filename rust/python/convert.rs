//! Every conversion between Python values and the core's: arguments (ints,
//! paths, text, string sequences, chunks), durations and times.
//!
//! One rule for every public call: a value of the wrong type is a
//! `TypeError`, a value of the right type that memtree cannot take (out of
//! range, a NUL in a path) is a `ValueError`, and either message starts with
//! the argument's name. PyO3's own extraction names the argument only in a
//! `TypeError`; an `int` past 64 bits would surface as an anonymous
//! `OverflowError`, so integer arguments come through here
//! (`#[pyo3(from_py_with = convert::arg::…)]`).
//!
//! Times: PyO3's datetime types (the `datetime` C API) are unavailable under
//! the stable ABI (abi3). An aware `datetime` of the exact type becomes
//! integer milliseconds since the epoch (UTC) from ONE C-level call,
//! `datetime.__reduce__`, whose pickle state holds the wall-clock fields as
//! bytes; the calendar arithmetic is integer Rust (plus `utcoffset()` when
//! the zone is not `timezone.utc`). Anything else that is a `datetime` (a
//! subclass, which may override `__reduce__`) takes `datetime`'s own
//! arithmetic, `(dt - EPOCH) // timedelta(milliseconds=1)`. Both are exact
//! and round toward minus infinity; a test holds them equal.
//!
//! Nothing here can panic on any input: every numeric conversion is checked.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyInt, PyString, PyTuple};

use super::imports;
use crate::chunk::{SourceKind, MAX_TIME_MS, MIN_TIME_MS};
use crate::chunks::MAX_LIST_LIMIT;
use crate::clock::now_ms;

/// The name of `value`'s type, for error messages.
pub(crate) fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default()
}

/// A Python `int` that fits in an `i64`; a bool counts as an int (as in
/// Python), anything else is a `TypeError`, an int past 64 bits a `ValueError`.
///
/// Every message names the field itself: since PyO3 0.28 an argument's name
/// reaches Python only as an exception note, which Python < 3.11 cannot hold.
pub fn int64(value: &Bound<'_, PyAny>, field: &str) -> PyResult<i64> {
    value.extract::<i64>().map_err(|e| {
        if e.is_instance_of::<PyOverflowError>(value.py()) {
            // The value itself is not quoted: a huge int may not even be
            // convertible to text (Python's int-to-str digit limit).
            PyValueError::new_err(format!(
                "{field}: out of range (must fit in a signed 64-bit integer)"
            ))
        } else {
            PyTypeError::new_err(format!("{field}: expected int, got {}", type_name(value)))
        }
    })
}

/// A row limit: any `int`, clamped to 1..=[`MAX_LIST_LIMIT`] whatever its
/// size (the reference clamps `usize::MAX`), so `2**64 - 1` means "as many
/// as allowed" rather than an error; a `bool`, which is an `int` to Python
/// but never a count, or any other type is a `TypeError` naming the field.
pub fn clamped_limit(value: &Bound<'_, PyAny>, field: &str) -> PyResult<i64> {
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{field}: expected int, got {}",
            type_name(value)
        )));
    }
    let n = match value.extract::<i64>() {
        Ok(n) => n,
        // Past 64 bits: only the sign matters once clamped.
        Err(_) if value.gt(0)? => MAX_LIST_LIMIT,
        Err(_) => 1,
    };
    Ok(n.clamp(1, MAX_LIST_LIMIT))
}

/// A file-system path (`str` or `os.PathLike[str]`); a NUL byte, which no
/// file name can hold, or a lone surrogate the file-system encoding cannot
/// take, is a `ValueError` instead of a failed open. Like [`int64`], every
/// message names the field.
///
/// The text goes through `os.fsencode` rather than PyO3's `PathBuf`
/// extraction, which panics on a `str` the encoding refuses.
pub fn path(value: &Bound<'_, PyAny>, field: &str) -> PyResult<PathBuf> {
    let py = value.py();
    let api = imports::get(py)?;
    let wrong_type = || {
        PyTypeError::new_err(format!(
            "{field}: expected str or os.PathLike, got {}",
            type_name(value)
        ))
    };
    let text = api
        .fspath
        .bind(py)
        .call1((value,))
        .map_err(|_| wrong_type())?;
    if !text.is_instance_of::<PyString>() {
        return Err(wrong_type());
    }
    let bytes: Vec<u8> = api
        .fsencode
        .bind(py)
        .call1((&text,))
        .and_then(|b| b.extract())
        .map_err(|_| {
            PyValueError::new_err(format!(
                "{field}: not encodable in the file-system encoding"
            ))
        })?;
    if bytes.contains(&0) {
        return Err(PyValueError::new_err(format!(
            "{field}: contains a NUL byte"
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        Ok(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
    }
    #[cfg(not(unix))]
    {
        Ok(PathBuf::from(text.extract::<String>()?))
    }
}

/// A `str` as Rust text: anything else is a `TypeError`; a `str` holding a
/// lone surrogate (which UTF-8 cannot encode, so SQLite could not store it)
/// is a `ValueError` naming the field, where PyO3 would raise an anonymous
/// `UnicodeEncodeError`.
pub fn text(value: &Bound<'_, PyAny>, field: &str) -> PyResult<String> {
    text_or_none(value).ok_or_else(|| text_error(value, field))
}

/// The text of a `str` that UTF-8 can encode; None for anything else.
fn text_or_none(value: &Bound<'_, PyAny>) -> Option<String> {
    let s = value.cast::<PyString>().ok()?;
    s.to_cow().map(std::borrow::Cow::into_owned).ok()
}

/// Why [`text_or_none`] gave None for `value`.
#[cold]
fn text_error(value: &Bound<'_, PyAny>, field: &str) -> PyErr {
    match value.cast::<PyString>() {
        Ok(s) => match utf8(s, field) {
            Err(e) => e,
            // Unreachable: text_or_none refused it; keep the message right anyway.
            Ok(_) => PyValueError::new_err(format!("{field}: not valid text")),
        },
        Err(_) => PyTypeError::new_err(format!("{field}: expected str, got {}", type_name(value))),
    }
}

fn utf8(s: &Bound<'_, PyString>, field: &str) -> PyResult<String> {
    s.to_cow().map(std::borrow::Cow::into_owned).map_err(|_| {
        PyValueError::new_err(format!(
            "{field}: not encodable as UTF-8 (it holds a lone surrogate)"
        ))
    })
}

/// [`text`] for an optional argument: `None` stays `None`.
fn opt_text(value: &Bound<'_, PyAny>, field: &str) -> PyResult<Option<String>> {
    if value.is_none() {
        Ok(None)
    } else {
        text(value, field).map(Some)
    }
}

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

/// Strings from a list, tuple or other iterable of `str` (not a bare `str`,
/// which would iterate as characters: almost surely a mistake); `field`
/// names the argument in the errors, and an element by its index.
pub fn strs(value: &Bound<'_, PyAny>, field: &str) -> PyResult<Vec<String>> {
    if value.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "{field}: expected a sequence of str, got a single str"
        )));
    }
    let iter = value
        .try_iter()
        .map_err(|_| PyTypeError::new_err(format!("{field}: expected an iterable of str")))?;
    let mut out = Vec::with_capacity(value.len().unwrap_or(0));
    for (i, item) in iter.enumerate() {
        let item = item?;
        // The element's name (`ids[7]`) is formatted only for an error: per
        // element it cost more than the conversion (100 ids, 100 strings).
        match text_or_none(&item) {
            Some(s) => out.push(s),
            None => return Err(text_error(&item, &format!("{field}[{i}]"))),
        }
    }
    Ok(out)
}

/// `memtree.SourceKind(kind)`, the Python enum member for a kind.
pub fn source_kind_to_py(py: Python<'_>, kind: SourceKind) -> PyResult<Bound<'_, PyAny>> {
    imports::get(py)?
        .source_kind
        .bind(py)
        .call1((kind.as_str(),))
}

/// A source kind from a `SourceKind` member or its string value.
pub fn source_kind(value: &Bound<'_, PyAny>, field: &str) -> PyResult<SourceKind> {
    // SourceKind is a str enum, so its members are str instances too.
    let s = value.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{field}: expected a SourceKind or str, got {}",
            type_name(value)
        ))
    })?;
    let text = utf8(s, field)?;
    Ok(SourceKind::parse_field(&text, field)?)
}

/// An optional embedding for `Chunk(embedding=...)`: a 1-D float buffer or
/// a sequence of floats ([`super::vector::floats`]), stored as `f32`.
pub fn embedding(embedding: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<f32>>> {
    embedding
        .map(|values| super::vector::floats(values, "embedding"))
        .transpose()
}

/// `from_py_with` adapters, one per integer or path argument name, so that
/// PyO3 keeps the Python signature (and its defaults) while the errors
/// follow the rule above.
pub mod arg {
    use std::path::PathBuf;

    use pyo3::prelude::*;

    macro_rules! named {
        ($($name:ident($field:literal): $ty:ty = $conv:path;)*) => {$(
            #[doc = concat!("The `", $field, "` argument.")]
            pub fn $name(value: &Bound<'_, PyAny>) -> PyResult<$ty> {
                $conv(value, $field)
            }
        )*};
    }

    named! {
        token_count("token_count"): i64 = super::int64;
        seq_in_source("seq_in_source"): i64 = super::int64;
        limit("limit"): i64 = super::int64;
        clamped_limit("limit"): i64 = super::clamped_limit;
        k("k"): i64 = super::clamped_limit;
        metric("metric"): String = super::text;
        max_attempts("max_attempts"): i64 = super::int64;
        path("path"): PathBuf = super::path;
        workspace("workspace"): PathBuf = super::path;
        id("id"): String = super::text;
        content("content"): String = super::text;
        source_id("source_id"): String = super::text;
        owner("owner"): String = super::text;
        status("status"): String = super::text;
        kind("kind"): String = super::text;
        error("error"): String = super::text;
        reason("reason"): String = super::text;
        job_id("job_id"): String = super::text;
        opt_source_ref("source_ref"): Option<String> = super::opt_text;
        opt_lifecycle_status("lifecycle_status"): Option<String> = super::opt_text;
        opt_content_path("content_path"): Option<String> = super::opt_text;
        opt_content_sha256("content_sha256"): Option<String> = super::opt_text;
        opt_source_id("source_id"): Option<String> = super::opt_text;
        opt_owner("owner"): Option<String> = super::opt_text;
        opt_dedupe_key("dedupe_key"): Option<String> = super::opt_text;
        opt_status("status"): Option<String> = super::opt_text;
        opt_kind("kind"): Option<String> = super::opt_text;
    }
}

/// A float vector for `set_chunk_embedding`: `None` (clear), a 1-D float32
/// or float64 buffer or any other iterable of floats
/// ([`super::vector::floats`]). Emptiness and finiteness are the core's check
/// ([`crate::chunk::validate_embedding`]), which runs before any write.
pub fn vector(value: &Bound<'_, PyAny>, field: &str) -> PyResult<Option<Vec<f32>>> {
    super::vector::opt_floats(value, field)
}

/// Raw refs for `set_chunk_raw_refs`: `None` (clear) or an iterable of
/// `memtree.RawRef` (not a bare `str`); each field is converted under its
/// own name (`refs[2].start`). Values are checked by the core
/// ([`crate::derived::RawRef::validate`]).
pub fn raw_refs(value: &Bound<'_, PyAny>, field: &str) -> PyResult<Option<Vec<crate::RawRef>>> {
    if value.is_none() {
        return Ok(None);
    }
    if value.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "{field}: expected a sequence of RawRef, got a single str"
        )));
    }
    let py = value.py();
    let raw_ref = super::imports::get(py)?.raw_ref.bind(py);
    let iter = value.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "{field}: expected a sequence of RawRef, got {}",
            type_name(value)
        ))
    })?;
    let mut out = Vec::new();
    for (i, item) in iter.enumerate() {
        let item = item?;
        let at = format!("{field}[{i}]");
        if !item.is_instance(raw_ref)? {
            return Err(PyTypeError::new_err(format!(
                "{at}: expected RawRef, got {}",
                type_name(&item)
            )));
        }
        let end = item.getattr("end")?;
        out.push(crate::RawRef {
            path: text(&item.getattr("path")?, &format!("{at}.path"))?,
            start: int64(&item.getattr("start")?, &format!("{at}.start"))?,
            end: if end.is_none() {
                None
            } else {
                Some(int64(&end, &format!("{at}.end"))?)
            },
        });
    }
    Ok(Some(out))
}

/// `memtree.RawRef(path, start, end)` for a stored ref.
pub fn raw_ref_to_py<'py>(py: Python<'py>, r: &crate::RawRef) -> PyResult<Bound<'py, PyAny>> {
    super::imports::get(py)?
        .raw_ref
        .bind(py)
        .call1((r.path.as_str(), r.start, r.end))
}

/// `memtree.SourceInfo` for one row of `list_sources`.
pub fn source_info_to_py<'py>(
    py: Python<'py>,
    s: &crate::SourceInfo,
) -> PyResult<Bound<'py, PyAny>> {
    super::imports::get(py)?.source_info.bind(py).call1((
        source_kind_to_py(py, s.source_kind)?,
        s.source_id.as_str(),
        s.chunk_count,
        s.token_total,
        from_ms(py, s.oldest_ms)?,
        from_ms(py, s.newest_ms)?,
    ))
}
