//! Arguments: ints, paths, text, string sequences and source kinds, each
//! named in its error, and the `from_py_with` adapters ([`arg`]) that give
//! each argument name its conversion.

use std::path::PathBuf;

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyString};

use crate::chunks::record::SourceKind;
use crate::chunks::MAX_LIST_LIMIT;
use crate::python::imports;

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

/// A `bool` (or numpy's `bool_`, as PyO3 takes it); anything else, an
/// `int` included, is a `TypeError` naming the field.
pub fn flag(value: &Bound<'_, PyAny>, field: &str) -> PyResult<bool> {
    value.extract::<bool>().map_err(|_| {
        PyTypeError::new_err(format!("{field}: expected bool, got {}", type_name(value)))
    })
}

/// A number as `f64` (anything with `__float__`, as PyO3 takes it); else a
/// `TypeError` naming the field.
pub fn float(value: &Bound<'_, PyAny>, field: &str) -> PyResult<f64> {
    value.extract::<f64>().map_err(|_| {
        PyTypeError::new_err(format!("{field}: expected float, got {}", type_name(value)))
    })
}

/// [`float`] for an optional argument: `None` stays `None`.
fn opt_float(value: &Bound<'_, PyAny>, field: &str) -> PyResult<Option<f64>> {
    if value.is_none() {
        Ok(None)
    } else {
        float(value, field).map(Some)
    }
}

/// [`int64`] for an optional argument: `None` stays `None`.
fn opt_int64(value: &Bound<'_, PyAny>, field: &str) -> PyResult<Option<i64>> {
    if value.is_none() {
        Ok(None)
    } else {
        int64(value, field).map(Some)
    }
}

/// [`text`] for an optional argument: `None` stays `None`.
fn opt_text(value: &Bound<'_, PyAny>, field: &str) -> PyResult<Option<String>> {
    if value.is_none() {
        Ok(None)
    } else {
        text(value, field).map(Some)
    }
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

/// `from_py_with` adapters, one per argument name, so that
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
        chunk_id("chunk_id"): String = super::text;
        node_kind("node_kind"): String = super::text;
        node_id("node_id"): String = super::text;
        target_kind("target_kind"): String = super::text;
        target_id("target_id"): String = super::text;
        tree_id("tree_id"): String = super::text;
        scope("scope"): String = super::text;
        query("query"): String = super::text;
        syntax("syntax"): String = super::text;
        backup("backup"): PathBuf = super::path;
        dest("dest"): PathBuf = super::path;
        page_size("page_size"): i64 = super::clamped_limit;
        level("level"): i64 = super::int64;
        days_back("days_back"): i64 = super::int64;
        opt_max_age_secs("max_age_secs"): Option<i64> = super::opt_int64;
        score("score"): f64 = super::float;
        opt_score("score"): Option<f64> = super::opt_float;
        include_summaries("include_summaries"): bool = super::flag;
        full("full"): bool = super::flag;
        deleted("deleted"): bool = super::flag;
        enqueue_follow_ups("enqueue_follow_ups"): bool = super::flag;
        must_exist("must_exist"): bool = super::flag;
        dry_run("dry_run"): bool = super::flag;
    }
}
