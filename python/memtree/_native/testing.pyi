"""Test hooks of the native core (``memtree._native.testing``), kept out of
the product namespace. ``memtree.testing`` is the typed face tests use."""

from memtree.errors import MemtreeError

__all__ = [
    "error_classes",
    "error_variants",
]

def error_classes() -> list[tuple[str, type[MemtreeError]]]:
    """``(label, exception class)`` for every class the core's classifier can
    return (``"transient_io"``, ``"busy"``, …)."""

def error_variants() -> list[tuple[str, BaseException]]:
    """``(variant name, exception)`` for a sample of every core error variant,
    converted as a failing call raises it."""
