//! The bridge from the core's `log` records to Python's `logging`.
//!
//! A record with target `memtree::journal` goes to the logger
//! `memtree.journal` (a child of `memtree`); its key-value pairs become
//! `extra` fields, so handlers see `record.db_path` and `record.sqlite_code`
//! (an `int`). The Python logger's own level decides what is emitted; it is
//! asked on every record (the core logs only rare events), so
//! `logging.getLogger("memtree").setLevel(...)` takes effect at once.
//!
//! Deadlock rule: `log` is called from threads that released the GIL
//! (`py.detach`) and may hold the per-path init lock or a connection mutex.
//! Attaching here waits for the GIL, which is safe because the glue never
//! takes those locks with the GIL held (every database call detaches first),
//! and the core never logs while holding the registry, breaker or
//! journal-mode locks that GIL-holding glue functions do take. A handler
//! that itself opens the same database would wait on the init lock its own
//! thread holds, so handlers must not call memtree.

use log::kv::{Key, Value, VisitSource};
use log::{Level, LevelFilter, Log, Metadata, Record};
use pyo3::prelude::*;
use pyo3::types::PyDict;

struct PythonLogging;

/// The `logging` level number for a `log` level.
fn py_level(level: Level) -> u8 {
    match level {
        Level::Error => 40,
        Level::Warn => 30,
        Level::Info => 20,
        Level::Debug => 10,
        Level::Trace => 5,
    }
}

struct ExtraFields<'a, 'py> {
    dict: &'a Bound<'py, PyDict>,
    failed: Option<PyErr>,
}

impl<'kvs> VisitSource<'kvs> for ExtraFields<'_, '_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let set = match value.to_i64() {
            Some(n) => self.dict.set_item(key.as_str(), n),
            None => self.dict.set_item(key.as_str(), value.to_string()),
        };
        if let Err(e) = set {
            self.failed.get_or_insert(e);
        }
        Ok(())
    }
}

fn emit(py: Python<'_>, record: &Record<'_>) -> PyResult<()> {
    let name = record.target().replace("::", ".");
    let logger = super::imports::get(py)?
        .get_logger
        .bind(py)
        .call1((name,))?;
    let level = py_level(record.level());
    if !logger.call_method1("isEnabledFor", (level,))?.is_truthy()? {
        return Ok(());
    }
    let extra = PyDict::new(py);
    let mut fields = ExtraFields {
        dict: &extra,
        failed: None,
    };
    let _ = record.key_values().visit(&mut fields);
    if let Some(e) = fields.failed {
        return Err(e);
    }
    let kwargs = PyDict::new(py);
    kwargs.set_item("extra", extra)?;
    // The message is passed whole, with no %-arguments, so a '%' in a path
    // is not taken for a format directive.
    logger.call_method("log", (level, record.args().to_string()), Some(&kwargs))?;
    Ok(())
}

impl Log for PythonLogging {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("memtree")
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // try_attach: during interpreter shutdown the record is dropped.
        let _ = Python::try_attach(|py| {
            // An exception already pending on this thread must survive the
            // logging call; a failure inside logging is reported as
            // unraisable rather than leaking into the caller's result.
            let pending = PyErr::take(py);
            if let Err(e) = emit(py, record) {
                e.write_unraisable(py, None);
            }
            if let Some(pending) = pending {
                pending.restore(py);
            }
        });
    }

    fn flush(&self) {}
}

/// Installs the bridge as the process's `log` logger (once; if another
/// extension already installed one, memtree's records go there instead).
pub fn install() {
    static LOGGER: PythonLogging = PythonLogging;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Debug);
    }
}
