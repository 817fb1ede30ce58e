//! Every conversion between Python values and the core's: arguments (ints,
//! paths, text, string sequences, chunks), durations and times.
//!
//! One rule for every public call: a value of the wrong type is a
//! `TypeError`, a value of the right type that memtree cannot take (out of
//! range, a NUL in a path) is a `ValueError`, and either message starts with
//! the argument's name. PyO3's own extraction names the argument only in an
//! exception note (which CPython < 3.11 cannot show), and an `int` past 64
//! bits would surface as an anonymous `OverflowError`, so every argument
//! PyO3 would convert by its type comes through here
//! (`#[pyo3(from_py_with = convert::arg::…)]`;
//! tests/package/test_argument_names.py finds any that does not).
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
//!
//! By kind of value: [`args`] (arguments), [`time`] (durations and times),
//! [`vector`](mod@vector) (float vectors) and [`values`] (the core's structured values
//! as Python objects). Callers name what they need through this module.

pub mod args;
pub mod time;
pub mod values;
pub mod vector;

// Callers name a conversion through this module, whichever file holds it.
pub use args::*;
pub use time::*;
pub use values::*;
pub use vector::*;

/// The `list_chunks` keyword arguments as a core filter (also those of
/// `delete_chunks`, which has no `until`).
pub(crate) fn chunk_filter(
    source_kind: Option<&pyo3::Bound<'_, pyo3::PyAny>>,
    source_id: Option<String>,
    owner: Option<String>,
    since: Option<&pyo3::Bound<'_, pyo3::PyAny>>,
    until: Option<&pyo3::Bound<'_, pyo3::PyAny>>,
) -> pyo3::PyResult<crate::chunks::ChunkFilter> {
    Ok(crate::chunks::ChunkFilter {
        source_kind: source_kind
            .map(|k| args::source_kind(k, "source_kind"))
            .transpose()?,
        source_id,
        owner,
        since_ms: time::opt_to_ms(since, "since")?,
        until_ms: time::opt_to_ms(until, "until")?,
    })
}
