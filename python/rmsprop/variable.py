"""A mutable array holder with Keras' Variable interface.

The optimizer may move a Variable's storage into one flat buffer shared with
its siblings (see `flat_state.py`), so that many small tensors update as one.
Everything here therefore writes *into* `_value`, never rebinds it, except
`_rehome`, which the optimizer calls.
"""

import numpy as np

from . import config
from .checks import check_name, describe


def _dtype(dtype, argument):
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"`{argument}` is not a NumPy dtype; got {describe(dtype)}.") from None
    return resolved


class Variable(np.lib.mixins.NDArrayOperatorsMixin):
    """A named, mutable NumPy array (`value` is copied in).

    Args:
        value: anything `np.asarray` accepts, or another Variable.
        dtype: the storage dtype; None means `rmsprop.floatx()`, as in Keras.
        name: a string; defaults to "variable".
    """

    def __init__(self, value, dtype=None, name=None):
        self.name = check_name("name", "variable" if name is None else name)
        if isinstance(value, Variable):
            value = value._value
        source = np.asarray(value)
        if source.dtype.kind not in "biuf":
            raise TypeError(
                f"`value` must be numeric; got an array of dtype {source.dtype} "
                f"({describe(value)})."
            )
        if dtype is None:
            dtype = config.floatx()
        dtype = _dtype(dtype, "dtype")
        if dtype.kind not in "biuf":
            raise TypeError(f"`dtype` must be a real numeric dtype such as float32; got {dtype}.")
        # np.array copies: the caller's array (possibly read-only, e.g. from R)
        # is never aliased.
        self._value = np.array(source, dtype=dtype, order="C", copy=True)

    # -- Keras interface ---------------------------------------------------
    @property
    def shape(self):
        return self._value.shape

    @property
    def dtype(self):
        """The dtype name, as Keras reports it ("float32", ...)."""
        return self._value.dtype.name

    @property
    def ndim(self):
        return self._value.ndim

    @property
    def size(self):
        return self._value.size

    @property
    def value(self):
        """The current storage (not a copy)."""
        return self._value

    def numpy(self):
        """A copy of the current value."""
        return self._value.copy()

    def assign(self, value):
        """Overwrite the value in place; the shape must stay the same."""
        source = value._value if isinstance(value, Variable) else np.asarray(value)
        if source.shape != self._value.shape:
            raise ValueError(
                f"Cannot assign a value of shape {source.shape} to variable "
                f"'{self.name}' of shape {self._value.shape}."
            )
        np.copyto(self._value, source, casting="unsafe")
        return self

    def assign_add(self, value):
        np.add(self._value, np.asarray(value, dtype=self._value.dtype), out=self._value)
        return self

    def assign_sub(self, value):
        np.subtract(self._value, np.asarray(value, dtype=self._value.dtype), out=self._value)
        return self

    # -- NumPy interop -----------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        if copy:
            return np.array(self._value, dtype=dtype, copy=True)
        if dtype is None or np.dtype(dtype) == self._value.dtype:
            return self._value
        return self._value.astype(dtype)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # Arithmetic on a Variable gives plain arrays, as on a Keras variable.
        unwrapped = tuple(x._value if isinstance(x, Variable) else x for x in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(x._value if isinstance(x, Variable) else x for x in kwargs["out"])
        return getattr(ufunc, method)(*unwrapped, **kwargs)

    def __getitem__(self, index):
        return self._value[index]

    def __len__(self):
        return len(self._value)

    def __float__(self):
        return float(self._value)

    def __int__(self):
        return int(self._value)

    def __repr__(self):
        return (f"<Variable name={self.name}, shape={self.shape}, dtype={self.dtype}, "
                f"numpy={self._value!r}>")

    # -- for the optimizer -------------------------------------------------
    @classmethod
    def _wrap(cls, storage, name):
        """A Variable backed by `storage` itself (no copy): used for optimizer slots."""
        variable = cls.__new__(cls)
        variable.name = name
        variable._value = storage
        return variable

    def _rehome(self, storage, holder):
        """Move the value into `storage` (same shape and dtype) and use it from now on.

        `holder` owns `storage` (an optimizer's `flat_state.DtypeGroup`). The
        previous holder, if any, is told (`storage_taken()`), so that it stops
        treating its buffer as this variable's storage: an optimizer notices a
        move made by another without checking its variables at every step.
        """
        np.copyto(storage, self._value)
        self._value = storage
        previous = getattr(self, "_holder", None)
        self._holder = holder
        if previous is not None and previous is not holder:
            previous.storage_taken()
