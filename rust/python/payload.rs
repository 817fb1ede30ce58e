//! A job payload as JSON text in one pass: the Python value is walked once,
//! in Rust, and written as the JSON text `json.dumps(payload,
//! allow_nan=False, ensure_ascii=False)` writes (same separators, escapes,
//! float and int spelling, key conversion), so payloads stored before read
//! the same. The walk enforces everything the queue's JSON reader would, so
//! the core stores the text without parsing it again
//! (`NewJob::encoded`).
//!
//! What is refused, before any database work, naming the argument: a value
//! `json` cannot encode (a `set`, `bytes`, any other object; a dict key
//! that is not a `str`, `int`, `float`, `bool` or `None`) is a `TypeError`;
//! NaN or an infinity, a circular structure, more than [`MAX_DEPTH`] nested
//! containers, an integer beyond a float's range, or text that UTF-8 cannot
//! hold (a lone surrogate) is a `ValueError`.
//!
//! User code runs where `json` runs it and nowhere else: an `int` or
//! `float` subclass is written by `int.__repr__` / `float.__repr__`, never
//! by its own `__repr__`; a `dict` subclass is read through its `items()`
//! and a `list` or `tuple` subclass through its iterator, each collected
//! before it is encoded.

use std::fmt::Write as _;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::convert::type_name;

/// The most nested containers a payload may hold: the limit of the JSON
/// reader (serde_json's recursion limit of 128) the core used before.
pub const MAX_DEPTH: usize = 127;

/// `payload` as JSON text; `field` names the argument in every error.
pub fn to_json(payload: &Bound<'_, PyAny>, field: &str) -> PyResult<String> {
    let mut encoder = Encoder {
        out: String::with_capacity(64),
        path: Vec::new(),
        field,
    };
    encoder.value(payload)?;
    Ok(encoder.out)
}

struct Encoder<'f> {
    out: String,
    /// The containers being written, outermost first (circularity).
    path: Vec<usize>,
    field: &'f str,
}

impl Encoder<'_> {
    fn unstorable(&self, why: impl std::fmt::Display) -> PyErr {
        PyValueError::new_err(format!("{}: cannot be stored as JSON: {why}", self.field))
    }

    fn value(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        if value.is_none() {
            self.out.push_str("null");
        } else if let Ok(b) = value.cast::<PyBool>() {
            self.out
                .push_str(if b.is_true() { "true" } else { "false" });
        } else if let Ok(s) = value.cast::<PyString>() {
            self.string(s)?;
        } else if value.is_instance_of::<PyInt>() {
            self.int(value, true)?;
        } else if let Ok(f) = value.cast::<PyFloat>() {
            self.float(f)?;
        } else if let Ok(list) = value.cast_exact::<PyList>() {
            self.enter(value)?;
            self.out.push('[');
            // Indexed with the length re-read each step: nothing the walk
            // does can run code that changes the list, but a bound is cheap.
            let mut i = 0;
            while i < list.len() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                self.value(&list.get_item(i)?)?;
                i += 1;
            }
            self.out.push(']');
            self.path.pop();
        } else if let Ok(tuple) = value.cast_exact::<PyTuple>() {
            self.enter(value)?;
            self.array(tuple.iter())?;
            self.path.pop();
        } else if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
            // A subclass is read through its iterator, as json's
            // PySequence_Fast does, collected before it is encoded.
            self.enter(value)?;
            let items = value.try_iter()?.collect::<PyResult<Vec<_>>>()?;
            self.array(items.into_iter())?;
            self.path.pop();
        } else if let Ok(dict) = value.cast::<PyDict>() {
            self.enter(value)?;
            self.dict(dict)?;
            self.path.pop();
        } else {
            return Err(PyTypeError::new_err(format!(
                "{}: not JSON-serialisable: Object of type {} is not JSON serializable",
                self.field,
                type_name(value)
            )));
        }
        Ok(())
    }

    fn array<'py>(&mut self, items: impl Iterator<Item = Bound<'py, PyAny>>) -> PyResult<()> {
        self.out.push('[');
        for (i, item) in items.enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.value(&item)?;
        }
        self.out.push(']');
        Ok(())
    }

    /// Opens a container: refused when it is already being written (a
    /// circular reference) or would be one level too deep.
    fn enter(&mut self, container: &Bound<'_, PyAny>) -> PyResult<()> {
        let id = container.as_ptr() as usize;
        if self.path.contains(&id) {
            return Err(self.unstorable("circular reference detected"));
        }
        if self.path.len() >= MAX_DEPTH {
            return Err(self.unstorable(format!("more than {MAX_DEPTH} nested containers")));
        }
        self.path.push(id);
        Ok(())
    }

    fn dict(&mut self, dict: &Bound<'_, PyDict>) -> PyResult<()> {
        // A snapshot of the items (as json's PyMapping_Items): nothing can
        // change the mapping under the walk.
        let items = if dict.is_exact_instance_of::<PyDict>() {
            dict.items()
        } else {
            let items = dict.call_method0("items")?;
            PyList::new(dict.py(), items.try_iter()?.collect::<PyResult<Vec<_>>>()?)?
        };
        self.out.push('{');
        for (i, item) in items.iter().enumerate() {
            let (key, value) = item
                .cast::<PyTuple>()
                .ok()
                .filter(|t| t.len() == 2)
                .map(|t| (t.get_item(0), t.get_item(1)))
                .ok_or_else(|| self.unstorable("items must return 2-tuples"))?;
            let (key, value) = (key?, value?);
            if i > 0 {
                self.out.push_str(", ");
            }
            self.key(&key)?;
            self.out.push_str(": ");
            self.value(&value)?;
        }
        self.out.push('}');
        Ok(())
    }

    /// A key as json converts it: `str` as is, `float`, `bool`, `None` and
    /// `int` spelled as JSON would spell the value, in quotes.
    fn key(&mut self, key: &Bound<'_, PyAny>) -> PyResult<()> {
        if let Ok(s) = key.cast::<PyString>() {
            return self.string(s);
        }
        self.out.push('"');
        if key.is_none() {
            self.out.push_str("null");
        } else if let Ok(b) = key.cast::<PyBool>() {
            self.out
                .push_str(if b.is_true() { "true" } else { "false" });
        } else if key.is_instance_of::<PyInt>() {
            // A key is text: any size the digit limit allows is fine.
            self.int(key, false)?;
        } else if let Ok(f) = key.cast::<PyFloat>() {
            self.float(f)?;
        } else {
            return Err(PyTypeError::new_err(format!(
                "{}: not JSON-serialisable: keys must be str, int, float, bool or None, not {}",
                self.field,
                type_name(key)
            )));
        }
        self.out.push('"');
        Ok(())
    }

    /// An `int` as `int.__repr__` spells it. A value (not a key) must be
    /// within a float's range, as the queue's JSON reader requires.
    fn int(&mut self, value: &Bound<'_, PyAny>, in_float_range: bool) -> PyResult<()> {
        if let Ok(n) = value.extract::<i64>() {
            let _ = write!(self.out, "{n}");
            return Ok(());
        }
        if let Ok(n) = value.extract::<u64>() {
            let _ = write!(self.out, "{n}");
            return Ok(());
        }
        // Past 64 bits: int's own repr (not a subclass's), which refuses
        // more digits than Python's int-to-str limit with a ValueError.
        let py = value.py();
        let digits = py
            .get_type::<PyInt>()
            .getattr("__repr__")?
            .call1((value,))
            .map_err(|e| self.unstorable(e))?;
        let digits = digits.cast::<PyString>()?.to_cow()?;
        if in_float_range && !digits.parse::<f64>().is_ok_and(f64::is_finite) {
            return Err(self.unstorable("an integer beyond a float's range"));
        }
        self.out.push_str(&digits);
        Ok(())
    }

    /// A finite `float` as `float.__repr__` spells it.
    fn float(&mut self, value: &Bound<'_, PyFloat>) -> PyResult<()> {
        let x = value.value();
        if !x.is_finite() {
            return Err(self.unstorable(format!(
                "out of range float values are not JSON compliant: {x}"
            )));
        }
        let repr = if value.is_exact_instance_of::<PyFloat>() {
            value.repr()?
        } else {
            PyFloat::new(value.py(), x).repr()?
        };
        self.out.push_str(&repr.to_cow()?);
        Ok(())
    }

    /// A JSON string with json's escapes (`ensure_ascii=False`): quote,
    /// backslash, the short control escapes, other controls as `\u00XX`.
    fn string(&mut self, s: &Bound<'_, PyString>) -> PyResult<()> {
        let text = s.to_cow().map_err(|_| {
            PyValueError::new_err(format!(
                "{}: not encodable as UTF-8 (it holds a lone surrogate)",
                self.field
            ))
        })?;
        let out = &mut self.out;
        out.reserve(text.len() + 2);
        out.push('"');
        let mut start = 0;
        for (i, b) in text.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0..=0x1f => "",
                _ => continue,
            };
            out.push_str(&text[start..i]);
            if escape.is_empty() {
                let _ = write!(out, "\\u{b:04x}");
            } else {
                out.push_str(escape);
            }
            start = i + 1;
        }
        out.push_str(&text[start..]);
        out.push('"');
        Ok(())
    }
}
