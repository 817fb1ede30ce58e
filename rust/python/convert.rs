//! Argument conversions that name the argument in every error.
//!
//! One rule for every public call: a value of the wrong type is a
//! `TypeError`, a value of the right type that memtree cannot take (out of
//! range, a NUL in a path) is a `ValueError`, and either message starts with
//! the argument's name. PyO3's own extraction names the argument only in a
//! `TypeError`; an `int` past 64 bits would surface as an anonymous
//! `OverflowError`, so integer arguments come through here
//! (`#[pyo3(from_py_with = convert::arg::…)]`).
//!
//! Nothing here can panic on any input: every numeric conversion is checked.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::chunk::{MAX_TIME_MS, MIN_TIME_MS};

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default()
}

/// A Python `int` that fits in an `i64`; a bool counts as an int (as in
/// Python), anything else is a `TypeError`, an int past 64 bits a `ValueError`.
///
/// Used through [`arg`], so the `TypeError` leaves the name out: PyO3
/// prefixes every argument's `TypeError` with `argument '<name>': `.
pub fn int64(value: &Bound<'_, PyAny>, field: &str) -> PyResult<i64> {
    value.extract::<i64>().map_err(|e| {
        if e.is_instance_of::<PyOverflowError>(value.py()) {
            // The value itself is not quoted: a huge int may not even be
            // convertible to text (Python's int-to-str digit limit).
            PyValueError::new_err(format!(
                "{field}: out of range (must fit in a signed 64-bit integer)"
            ))
        } else {
            PyTypeError::new_err(format!("expected int, got {}", type_name(value)))
        }
    })
}

/// A file-system path (`str` or `os.PathLike`); a NUL byte, which no file
/// name can hold, is a `ValueError` instead of a failed open. Like
/// [`int64`], its `TypeError` gets the name from PyO3.
pub fn path(value: &Bound<'_, PyAny>, field: &str) -> PyResult<PathBuf> {
    let path: PathBuf = value.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "expected str or os.PathLike, got {}",
            type_name(value)
        ))
    })?;
    if path.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(PyValueError::new_err(format!(
            "{field}: contains a NUL byte"
        )));
    }
    Ok(path)
}

static TIMEDELTA: PyOnceLock<(Py<PyAny>, Py<PyAny>)> = PyOnceLock::new();

/// `(datetime.timedelta, timedelta(milliseconds=1))`, imported once.
fn timedelta(py: Python<'_>) -> PyResult<&(Py<PyAny>, Py<PyAny>)> {
    TIMEDELTA.get_or_try_init(py, || {
        let t = py.import("datetime")?.getattr("timedelta")?;
        let one_ms = t.call((0, 0, 1000), None)?;
        Ok((t.unbind(), one_ms.unbind()))
    })
}

/// A `timedelta` as whole milliseconds (rounded toward minus infinity),
/// computed exactly by `datetime`'s integer arithmetic rather than through a
/// float. Every timedelta fits: its range is under ±10^17 ms.
pub fn timedelta_ms(value: &Bound<'_, PyAny>, field: &str) -> PyResult<i64> {
    let py = value.py();
    let (timedelta_type, one_ms) = timedelta(py)?;
    if !value.is_instance(timedelta_type.bind(py))? {
        return Err(PyTypeError::new_err(format!(
            "{field}: expected a timedelta, got {}",
            type_name(value)
        )));
    }
    value.floor_div(one_ms.bind(py))?.extract()
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

/// `from_py_with` adapters, one per integer or path argument name, so that
/// PyO3 keeps the Python signature (and its defaults) while the errors
/// follow the rule above.
pub mod arg {
    use std::path::PathBuf;

    use pyo3::prelude::*;

    macro_rules! named {
        ($($name:ident: $ty:ty = $conv:path;)*) => {$(
            #[doc = concat!("The `", stringify!($name), "` argument.")]
            pub fn $name(value: &Bound<'_, PyAny>) -> PyResult<$ty> {
                $conv(value, stringify!($name))
            }
        )*};
    }

    named! {
        token_count: i64 = super::int64;
        seq_in_source: i64 = super::int64;
        limit: i64 = super::int64;
        max_attempts: i64 = super::int64;
        path: PathBuf = super::path;
        workspace: PathBuf = super::path;
    }
}
