//! Aware `datetime` ↔ integer milliseconds since the epoch (UTC).
//!
//! PyO3's datetime types are unavailable under the stable ABI (abi3), so the
//! conversion goes through `datetime`'s own arithmetic, which is exact:
//! `(dt - EPOCH) // timedelta(milliseconds=1)`.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;

use super::convert::check_time_ms;

struct DatetimeApi {
    datetime_type: Py<PyAny>,
    timedelta_type: Py<PyAny>,
    epoch: Py<PyAny>,
    one_ms: Py<PyAny>,
}

static API: PyOnceLock<DatetimeApi> = PyOnceLock::new();

fn api(py: Python<'_>) -> PyResult<&DatetimeApi> {
    API.get_or_try_init(py, || {
        let m = py.import("datetime")?;
        let datetime_type = m.getattr("datetime")?;
        let timedelta_type = m.getattr("timedelta")?;
        let utc = m.getattr("timezone")?.getattr("utc")?;
        let epoch = datetime_type.call((1970, 1, 1, 0, 0, 0, 0, utc), None)?;
        let one_ms = timedelta_type.call((0, 0, 1000), None)?;
        Ok(DatetimeApi {
            datetime_type: datetime_type.unbind(),
            timedelta_type: timedelta_type.unbind(),
            epoch: epoch.unbind(),
            one_ms: one_ms.unbind(),
        })
    })
}

/// Milliseconds since the epoch of an aware `datetime`; `field` names the
/// argument in the `TypeError` / `ValueError` raised for anything else.
///
/// Only times that read back are accepted: `datetime.max` at UTC-23:59 is
/// past 9999-12-31 in UTC, and [`from_ms`] could not build it again, so it
/// is a `ValueError` here rather than a stored value nobody can read.
pub fn to_ms(value: &Bound<'_, PyAny>, field: &str) -> PyResult<i64> {
    let py = value.py();
    let api = api(py)?;
    if !value.is_instance(api.datetime_type.bind(py))? {
        return Err(PyTypeError::new_err(format!(
            "{field}: expected an aware datetime, got {}",
            value.get_type().name()?
        )));
    }
    if value.call_method0("utcoffset")?.is_none() {
        return Err(PyValueError::new_err(format!(
            "{field}: naive datetime; give it a timezone (e.g. tzinfo=timezone.utc)"
        )));
    }
    // Exact and always within i64: any two datetimes are < 2^49 ms apart.
    let ms: i64 = value
        .sub(api.epoch.bind(py))?
        .floor_div(api.one_ms.bind(py))?
        .extract()?;
    check_time_ms(ms, field)
}

/// Optional variant of [`to_ms`].
pub fn opt_to_ms(value: Option<&Bound<'_, PyAny>>, field: &str) -> PyResult<Option<i64>> {
    value.map(|v| to_ms(v, field)).transpose()
}

/// Optional variant of [`from_ms`].
pub fn opt_from_ms(py: Python<'_>, ms: Option<i64>) -> PyResult<Option<Bound<'_, PyAny>>> {
    ms.map(|ms| from_ms(py, ms)).transpose()
}

/// An aware UTC `datetime` for `ms` milliseconds since the epoch.
pub fn from_ms(py: Python<'_>, ms: i64) -> PyResult<Bound<'_, PyAny>> {
    let api = api(py)?;
    let delta = api.timedelta_type.bind(py).call1(PyTuple::new(
        py,
        [0, ms.div_euclid(1000), ms.rem_euclid(1000) * 1000],
    )?)?;
    api.epoch.bind(py).add(delta)
}
