//! Argument conversion and GIL release for the operations of `crate::ops`
//! (purge); the methods that expose them delegate here in one line each.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::convert;
use super::imports;
use crate::clock::now_ms;
use crate::jobs::JobStatus;
use crate::ops::purge;
use crate::store::Store;

/// The cutoff of `older_than`: a `timedelta` (finished longer ago than
/// that) or an aware `datetime` (finished before it).
fn cutoff_ms(older_than: &Bound<'_, PyAny>) -> PyResult<i64> {
    let py = older_than.py();
    let api = imports::get(py)?;
    if older_than.is_instance(api.timedelta.bind(py))? {
        let age = convert::timedelta_ms(older_than, "older_than")?;
        if age < 0 {
            return Err(PyValueError::new_err("older_than: must not be negative"));
        }
        return Ok(now_ms().saturating_sub(age));
    }
    convert::to_ms(older_than, "older_than")
}

/// The statuses to purge; `None`: every finished status.
fn statuses(value: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<JobStatus>> {
    let Some(value) = value else {
        return Ok(JobStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect());
    };
    convert::strs(value, "statuses")?
        .iter()
        .map(|name| {
            name.parse::<JobStatus>()
                .map_err(|_| PyValueError::new_err(format!("statuses: unknown status {name:?}")))
        })
        .collect()
}

/// `Jobs.purge(older_than, statuses=None)`.
pub fn purge_jobs(
    py: Python<'_>,
    store: &Store,
    older_than: &Bound<'_, PyAny>,
    statuses_arg: Option<&Bound<'_, PyAny>>,
) -> PyResult<usize> {
    let cutoff = cutoff_ms(older_than)?;
    let statuses = statuses(statuses_arg)?;
    let report = py.detach(|| purge::purge_jobs(store, cutoff, &statuses))?;
    Ok(report.deleted)
}
