"""memtree's loggers, and the filter that lets a format name ``db_path`` on
every one of them.

Imported on first need rather than by ``import memtree`` (``logging`` alone
costs more than the rest of the import): by the native glue the first time it
converts an argument (it takes ``get_logger`` from here, so no Store or Chunk
exists before the filters do, and no Worker, which needs a Store), and at
once by ``import memtree`` when the application has already imported
``logging`` (it may log on memtree's loggers before any memtree call).
"""

from __future__ import annotations

import logging

#: Every logger memtree emits records on: the Rust core's (see ``events.rs``)
#: and the worker's.
LOGGERS = (
    "memtree.journal",
    "memtree.recovery",
    "memtree.breaker",
    "memtree.worker",
    "memtree.erase",
)

#: What the native glue calls to get a logger (see ``imports.rs``).
get_logger = logging.getLogger


def _default_db_path(record: logging.LogRecord) -> bool:
    # A format such as "%(db_path)s" must work for every memtree record; the
    # worker's records name no single database, so they carry None.
    if not hasattr(record, "db_path"):
        record.db_path = None
    return True


for _name in LOGGERS:
    _logger = logging.getLogger(_name)
    if _default_db_path not in _logger.filters:
        _logger.addFilter(_default_db_path)
