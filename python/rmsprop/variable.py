"""A mutable array holder with Keras' Variable interface.

The optimizer may move a Variable's storage into one flat buffer shared with
its siblings (see `flat_state.py`), so that many small tensors update as one.
Everything here therefore writes *into* `_value`, never rebinds it, except
`_rehome`, which the optimizer calls.
"""

import itertools
import numbers
import threading

import numpy as np

from . import config
from .checks import argument_error, describe

_INITIALIZERS = {"zeros": np.zeros, "ones": np.ones}
_AGGREGATIONS = (None, "none", "mean", "sum", "only_first_replica")
_SYNCHRONIZATIONS = (None, "none", "on_read", "on_write", "auto")

# Unnamed variables are numbered as Keras numbers them (`auto_name`:
# "variable", "variable_1", ...), so that the optimizer's slot names, made
# from variable names, never repeat. Process-wide, as Keras' uid counter is.
_unnamed = itertools.count()
_unnamed_lock = threading.Lock()


def _default_name():
    with _unnamed_lock:
        number = next(_unnamed)
    return "variable" if number == 0 else f"variable_{number}"


def _dtype(dtype, argument):
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise argument_error(TypeError, argument, "a NumPy dtype", dtype) from None
    return resolved


def _inferred_dtype(value):
    """The dtype a Variable takes from its initial value when none is given.

    Keras >= 3.8 (`keras/src/backend/common/variables.py`: "If dtype is None
    and `initializer` is an array, use its dtype") converts the value with the
    backend's `convert_to_tensor`: an array (or another Variable, or a NumPy
    scalar) keeps its dtype; Python floats, and lists holding a float, give
    floatx; Python ints give int32 (`dtypes.result_type` of weak Python
    types). Keras' NumPy and JAX backends would also turn float64 and int64
    arrays into float32 and int32; we keep them, as its TensorFlow backend
    does, so that a float64 model never trains in float32 unnoticed.
    """
    if isinstance(value, (np.ndarray, np.generic)):
        return value.dtype
    flat = list(_leaves(value))
    if any(isinstance(x, bool) for x in flat) and all(isinstance(x, bool) for x in flat):
        return np.dtype(bool)
    if flat and all(isinstance(x, numbers.Integral) for x in flat):
        return np.dtype(np.int32)
    return np.dtype(config.floatx())


def _leaves(value):
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, (np.ndarray, np.generic)):
        yield from value.reshape(-1).tolist()
    else:
        yield value


class Variable(np.lib.mixins.NDArrayOperatorsMixin):
    """A named, mutable NumPy array with Keras 3's Variable interface.

    Arithmetic on a Variable gives plain NumPy arrays; `assign`,
    `assign_add` and `assign_sub` change it in place. The initial value is
    copied in: the caller's array (possibly read-only, e.g. from R) is never
    aliased.

    Args:
        initializer: the initial value (anything `np.asarray` accepts, or
            another Variable), or an initializer: `"zeros"`, `"ones"`, or a
            callable `initializer(shape, dtype=dtype)` returning an array of
            that shape; an initializer needs `shape`.
        shape: the shape for an initializer. With a value, None or the
            value's own shape.
        dtype: the storage dtype. None means the value's dtype when it is an
            array or a Variable (float64 stays float64), `rmsprop.floatx()`
            for Python floats, lists of floats and initializers, and int32
            for Python ints.
        trainable: whether the variable is meant to be trained (Keras'
            flag; the optimizer trains what it is given).
        autocast: accepted for Keras compatibility; this engine has no
            autocast scopes.
        aggregation: one of Keras' values (`"none"`, `"mean"`, `"sum"`,
            `"only_first_replica"`, None); stored only.
        synchronization: one of Keras' values (`"auto"`, `"none"`,
            `"on_read"`, `"on_write"`, None); stored only.
        name: a string without `/`; by default a unique name: "variable",
            "variable_1", ...

    Raises:
        ValueError: for a name containing `/`, a shape that does not match
            the value, an unknown initializer, aggregation or synchronization.
        TypeError: for non-numeric values or dtypes, or a non-string name.
    """

    def __init__(self, initializer, shape=None, dtype=None, trainable=True, autocast=True,
                 aggregation="none", synchronization="auto", name=None):
        if name is None:
            name = _default_name()
        elif not isinstance(name, str) or not name:
            raise argument_error(TypeError, "name", "a non-empty string", name)
        if "/" in name:
            raise argument_error(ValueError, "name", "a name without the character `/`", name)
        if aggregation not in _AGGREGATIONS:
            raise argument_error(ValueError, "aggregation", "one of None, 'none', 'mean', 'sum', "
                                 "'only_first_replica'", aggregation)
        if synchronization not in _SYNCHRONIZATIONS:
            raise argument_error(ValueError, "synchronization", "one of None, 'none', "
                                 "'on_read', 'on_write', 'auto'", synchronization)
        if dtype is not None:
            dtype = _dtype(dtype, "dtype")
            if dtype.kind not in "biuf":
                raise argument_error(TypeError, "dtype", "a real numeric dtype such as float32",
                                     dtype.name)
        if shape is not None:
            try:
                shape = tuple(int(n) for n in np.atleast_1d(np.asarray(shape)))
            except (TypeError, ValueError):
                raise argument_error(TypeError, "shape", "a tuple of integers", shape) from None
            if np.ndim(np.asarray(shape)) == 0 and np.asarray(shape).size == 0:
                shape = ()
            if any(n < 0 for n in shape):
                raise argument_error(ValueError, "shape", "non-negative integers", shape)

        if isinstance(initializer, str) or (callable(initializer)
                                            and not isinstance(initializer, Variable)):
            if isinstance(initializer, str):
                function = _INITIALIZERS.get(initializer)
                if function is None:
                    raise ValueError(f"Unknown initializer {initializer!r}: use "
                                     f"{', '.join(map(repr, _INITIALIZERS))}, a callable, "
                                     "or an array.")
            else:
                function = initializer
            if shape is None:
                raise ValueError("`shape` is needed to create a Variable from an initializer; "
                                 f"got initializer={describe(initializer)} and shape=None.")
            dtype = np.dtype(config.floatx()) if dtype is None else dtype
            source = np.asarray(function(shape, dtype=dtype))
            if source.shape != shape:
                raise ValueError(f"The initializer returned shape {source.shape}; "
                                 f"expected {shape}.")
        else:
            if isinstance(initializer, Variable):
                initializer = initializer._value
            source = np.asarray(initializer)
            if dtype is None:
                dtype = _inferred_dtype(initializer)
            if shape is not None and tuple(shape) != source.shape:
                raise ValueError(f"`shape` {tuple(shape)} does not match the shape "
                                 f"{source.shape} of the initial value.")
        if source.dtype.kind not in "biuf":
            raise TypeError(
                "`initializer` must be numeric; got an array of dtype "
                f"{source.dtype} ({describe(initializer)})."
            )
        self._name = name
        self._trainable = bool(trainable)
        self._autocast = bool(autocast)
        self._aggregation = "none" if aggregation is None else aggregation
        self._synchronization = "none" if synchronization is None else synchronization
        self._value = np.array(source, dtype=dtype, order="C", copy=True)

    # -- Keras interface ---------------------------------------------------
    _trainable = True
    _autocast = True
    _aggregation = "none"
    _synchronization = "auto"

    @property
    def name(self):
        """The variable's name."""
        return self._name

    @property
    def path(self):
        """Keras' path of the variable in its model; here (no models) its name."""
        return self._name

    @property
    def trainable(self):
        """Whether the variable is meant to be trained."""
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)

    @property
    def autocast(self):
        return self._autocast

    @property
    def aggregation(self):
        return self._aggregation

    @property
    def synchronization(self):
        return self._synchronization

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
        """The current storage (not a copy): writing into it changes the variable.

        Building an optimizer on the variable moves its storage into the
        optimizer's flat buffer (so that many small tensors update as one),
        once, at build time; an array taken from `value` before that keeps
        the old numbers and no longer follows the variable. Read `value`
        after building (or at each use); from then on it stays the same
        array until another optimizer is built on the variable.
        """
        return self._value

    def numpy(self):
        """A copy of the current value."""
        return self._value.copy()

    def assign(self, value):
        """Overwrite the value in place (cast to the variable's dtype); the shape
        must stay the same. Returns the new value (a NumPy array, not the
        storage), as Keras' `assign` returns the assigned tensor."""
        source = value._value if isinstance(value, Variable) else np.asarray(value)
        if source.shape != self._value.shape:
            raise ValueError(
                f"Cannot assign a value of shape {source.shape} to variable "
                f"'{self.name}' of shape {self._value.shape}."
            )
        np.copyto(self._value, source, casting="unsafe")
        return self._value.copy()

    def assign_add(self, value):
        """`assign(self + value)`, computed in the variable's dtype; returns the new value."""
        np.add(self._value, np.asarray(value, dtype=self._value.dtype), out=self._value)
        return self._value.copy()

    def assign_sub(self, value):
        """`assign(self - value)`, computed in the variable's dtype; returns the new value."""
        np.subtract(self._value, np.asarray(value, dtype=self._value.dtype), out=self._value)
        return self._value.copy()

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

    def _scalar(self, kind):
        if self._value.ndim > 0:
            raise TypeError("Only scalar arrays can be converted to Python scalars; "
                            f"variable '{self.name}' has shape {self.shape} ({kind}()).")
        return self._value[()]

    def __float__(self):
        return float(self._scalar("float"))

    def __int__(self):
        return int(self._scalar("int"))

    def __bool__(self):
        # As Keras: `if variable:` is a mistake (which element? any? all?).
        raise TypeError("A Variable cannot be used as a boolean; compare its value "
                        "explicitly (e.g. `bool(variable.numpy().any())`).")

    def __round__(self, ndigits=None):
        """np.round of the value (Keras: `ops.round`), a NumPy array."""
        return np.round(self._value, ndigits or 0)

    def __repr__(self):
        return (f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype}, "
                f"value={self._value!r}>")

    # -- for the optimizer -------------------------------------------------
    @classmethod
    def _wrap(cls, storage, name):
        """A Variable backed by `storage` itself (no copy): used for optimizer slots."""
        variable = cls.__new__(cls)
        variable._name = name
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
