"""The default float type ("floatx") used for new variables and the stored learning rate.

Keras keeps this as process-wide state; we do the same so that code written
against `keras.config.floatx()` carries over.
"""

import contextlib

_SUPPORTED_FLOATS = ("float16", "float32", "float64")
_floatx = "float32"


def floatx():
    """Return the default float type name, "float32" unless changed."""
    return _floatx


def set_floatx(value):
    """Set the default float type: one of "float16", "float32", "float64"."""
    global _floatx
    if value not in _SUPPORTED_FLOATS:
        raise ValueError(
            f"`value` must be one of {', '.join(_SUPPORTED_FLOATS)}; got {value!r}."
        )
    _floatx = str(value)


@contextlib.contextmanager
def floatx_scope(value):
    """Use `value` as floatx inside a `with` block, then restore the previous one."""
    previous = floatx()
    set_floatx(value)
    try:
        yield
    finally:
        set_floatx(previous)
