"""What every optimizer does around its update rule, as Keras 3 orders it.

`BaseOptimizer.apply` checks the gradients, then `_apply_checked` runs one
step as a list of named steps (see `steps.py`): unscale, accumulate, clip,
weight decay, the update rule, the moving average of the weights, and the
iteration counter. Storage (flat per-dtype buffers) sits behind
`flat_state.FlatStorage`. A subclass supplies only its slots and
`_update_group`, which hands its rule (a function over flat arrays, see
`kernels.rmsprop_rule`) to the storage (RMSprop), or calls a user's
Keras-style `update_step` per variable (`optimizer.Optimizer`).
"""

import functools
import inspect
import math
import operator
import os
import re
import sys
import threading
import warnings
from typing import NamedTuple, Optional

import numpy as np

from . import config, kernel_choice, kernels, schedules, steps
from .checks import (argument_error, check_bool, check_float, check_int, check_name, describe,
                     is_real_number)
from .flat_state import FlatStorage
from .state_variables import (MAX_ITERATIONS, IterationVariable, LearningRateVariable,
                              checked_learning_rate, counter_snapshot)
from .variable import Variable

_FLOAT_DTYPES = ("float16", "float32", "float64")
_SHAPE = operator.attrgetter("shape")
_DTYPE = operator.attrgetter("dtype")
_MAX_ITERATIONS = MAX_ITERATIONS


class _StepPlan(NamedTuple):
    """What `_plan_step` settled for one step before anything changed."""

    grads: list                      # by position, aliased ones copied
    raw_iterations: int              # the counter before the step
    iterations: int                  # completed updates before the step
    is_update_step: bool             # False while only accumulating
    private: bool                    # the steps write into the gradients
    learning_rate: Optional[object]  # the rate of the update (update steps)
    decay_rates: Optional[list]      # by position, the rate weight decay uses
    ema_overwrite: bool              # the EMA overwrites the variables this step
    compiled: bool                   # the step runs the compiled kernel


def _dtype_names(dtypes):
    """[d.name for d in dtypes], with `.name` (slow in NumPy 1.x) read once per dtype."""
    names = {dtype: dtype.name for dtype in set(dtypes)}
    return [names[dtype] for dtype in dtypes]


def _unfused(work, fused, field):
    """The group steps whose rule does not do step `field` in its own pass."""
    return [step for step, steps_ in zip(work, fused)
            if steps_ is None or getattr(steps_, field) is None]


# What the optimizer trains (see `_check_trainable`).
_TRAINABLE = "an rmsprop.Variable or a writable NumPy float array"


def _as_list(name, value, requirement="a list of variables"):
    """`list(value)`, or the argument error of `name` when it is not iterable."""
    try:
        return list(value)
    except TypeError:
        raise argument_error(TypeError, name, requirement, value) from None


def _stranger(variable):
    """A variable the optimizer is not built on, as messages name it."""
    return f"Variable {variable.name!r}" if isinstance(variable, Variable) else "This array"


def _variable_name(variable, index):
    return variable.name if isinstance(variable, Variable) else f"variable_{index}"


def _check_clip(name):
    def check(optimizer, value):
        value = check_float(name, value, low=0, low_open=True, optional=True)
        if value is not None:
            for other in _CLIP_ARGUMENTS:
                if other != name and getattr(optimizer, other, None) is not None:
                    raise ValueError(
                        f"Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be "
                        f"set; `{other}` is {getattr(optimizer, other)}, so `{name}` cannot be "
                        f"set to {describe(value)} (set `{other}` to None first).")
        return value
    return check


def _check_accumulation(optimizer, value):
    if value not in (None, 0) or isinstance(value, bool):
        value = check_int("gradient_accumulation_steps", value, low=2)
    if value:
        _check_slots_exist(optimizer, "gradient_accumulation_steps", value,
                           "gradient_accumulator", "gradient accumulators")
    return value


def _check_use_ema(optimizer, value):
    value = check_bool("use_ema", value)
    if value:
        _check_slots_exist(optimizer, "use_ema", value, "average",
                           "moving averages of the variables")
    return value


def _check_slots_exist(optimizer, name, value, kind, what):
    """Setting `name` to `value` needs slots `kind`: refused once the
    optimizer is built without them (Keras creates slots in `build()` only)."""
    if getattr(optimizer, "built", False) and kind not in optimizer._slot_variables:
        raise ValueError(f"`{name}` cannot be set to {describe(value)} after optimizer "
                         f"'{optimizer.name}' is built: that needs {what}, which are created "
                         f"when the optimizer is built. Set `{name}` before the first step, or "
                         "create a new optimizer.")


_CLIP_ARGUMENTS = ("clipnorm", "clipvalue", "global_clipnorm")


def _looks_like_pairs(grads):
    """True for TF-style [(gradient, variable), ...] passed as gradients."""
    first = grads[0]
    return (type(first) is tuple and len(first) == 2
            and isinstance(first[1], (Variable, np.ndarray)) and type(grads[-1]) is tuple)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _caller_stacklevel():
    """The `stacklevel` of a warning that points at the first frame outside
    this package (the user's line), however deep inside it the warning is."""
    level = 1
    frame = sys._getframe(1)
    while frame is not None and os.path.dirname(
            os.path.abspath(frame.f_code.co_filename)) == _PACKAGE_DIR:
        frame = frame.f_back
        level += 1
    return level


def _adopting(build):
    """Wrap a `build` method so that, when the outermost `build` call returns
    (a subclass's `build` calls `super().build()` first, then makes its own
    slots), a checkpoint waiting for the build is handed over. A subclass
    `build(variables)` written as in Keras, without `compute_dtype`, still
    receives one (a LossScaleOptimizer or R passes it on) through
    `_build_compute_dtype`."""
    parameters = inspect.signature(build).parameters
    takes_dtype = "compute_dtype" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())

    @functools.wraps(build)
    def wrapper(self, variables, compute_dtype=None):
        depth = self._build_depth
        outer_dtype = self._build_compute_dtype
        self._build_depth = depth + 1
        try:
            if takes_dtype:
                result = build(self, variables, compute_dtype=compute_dtype)
            else:
                if compute_dtype is not None:
                    self._build_compute_dtype = compute_dtype
                result = build(self, variables)
        finally:
            self._build_depth = depth
            self._build_compute_dtype = outer_dtype
        if depth == 0:
            self._adopt_pending_checkpoint()
        return result

    wrapper._adopting = True
    return wrapper


class BaseOptimizer:
    """Keras' optimizer base class, for NumPy arrays and `rmsprop.Variable`s.

    Hyperparameters are plain attributes, settable after construction as in
    Keras; every assignment is checked as the constructor checks the argument
    (`_HYPERPARAMETERS`), so a bad value is an error, never a NaN later.
    """

    _default_name = "optimizer"
    # True when the rule may read the caller's gradients where they are (the
    # RMSprop fast path); False gives it private flat copies.
    _reads_gradients_in_place = True
    # True when `_slot_kinds()` is known before `build` (checkpoints check a
    # file's slot kinds at load); False for slots a subclass makes in `build`.
    _declares_slots = True

    # name -> check(optimizer, value) returning the value to store.
    _HYPERPARAMETERS = {
        "name": lambda opt, v: check_name("name", v),
        "weight_decay": lambda opt, v: check_float("weight_decay", v, low=0, optional=True),
        "clipnorm": _check_clip("clipnorm"),
        "clipvalue": _check_clip("clipvalue"),
        "global_clipnorm": _check_clip("global_clipnorm"),
        "use_ema": _check_use_ema,
        "ema_momentum": lambda opt, v: check_float("ema_momentum", v, low=0, high=1),
        "ema_overwrite_frequency": lambda opt, v: check_int("ema_overwrite_frequency", v,
                                                            low=1, optional=True),
        "loss_scale_factor": lambda opt, v: check_float("loss_scale_factor", v, low=0,
                                                        low_open=True, optional=True,
                                                        normal=True),
        "gradient_accumulation_steps": _check_accumulation,
    }

    def __setattr__(self, name, value):
        check = self._HYPERPARAMETERS.get(name)
        if check is not None:
            value = check(self, value)
        object.__setattr__(self, name, value)

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        if "decay" in kwargs:
            kwargs.pop("decay")
            warnings.warn("`decay` is not supported in Keras 3 optimizers and is ignored; "
                          "use a learning rate schedule instead.", stacklevel=3)
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {', '.join(sorted(kwargs))}.")
        self.name = check_name("name", name, optional=True) or self._default_name
        self.weight_decay = check_float("weight_decay", weight_decay, low=0, optional=True)
        self.clipnorm = check_float("clipnorm", clipnorm, low=0, low_open=True, optional=True)
        self.clipvalue = check_float("clipvalue", clipvalue, low=0, low_open=True, optional=True)
        self.global_clipnorm = check_float("global_clipnorm", global_clipnorm, low=0,
                                           low_open=True, optional=True)
        clip_arguments = {"clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                          "global_clipnorm": self.global_clipnorm}
        if sum(v is not None for v in clip_arguments.values()) > 1:
            given = ", ".join(f"{k}={v}" for k, v in clip_arguments.items() if v is not None)
            raise ValueError(f"Only one of `clipnorm`, `clipvalue` and `global_clipnorm` "
                             f"can be set; got {given}.")
        self.use_ema = check_bool("use_ema", use_ema)
        self.ema_momentum = check_float("ema_momentum", ema_momentum, low=0, high=1)
        self.ema_overwrite_frequency = check_int("ema_overwrite_frequency",
                                                 ema_overwrite_frequency, low=1, optional=True)
        self.loss_scale_factor = check_float("loss_scale_factor", loss_scale_factor, low=0,
                                             low_open=True, optional=True, normal=True)
        self.gradient_accumulation_steps = gradient_accumulation_steps

        self._iterations = IterationVariable()
        self._learning_rate = None
        self._float64_policy = False
        self.learning_rate = learning_rate
        self.built = False
        self._trainable_variables = []
        self._exclude_from_decay = ([], ())
        self._storage = None             # flat_state.FlatStorage, once built
        # One step at a time: `apply` from two threads runs the steps one
        # after the other, as if called in turn (never interleaved).
        self._lock = threading.RLock()
        self._param_override = None     # plain arrays used by stateless_apply
        self._pending_checkpoint = None  # checkpoint state waiting for build (checkpoint.py)
        self._build_depth = 0            # nested `build` calls running (see `_adopting`)
        self._build_compute_dtype = None  # for a subclass `build(variables)` without it
        self._generic_kinds = []         # slot kinds a subclass made in `build` (optimizer.py)

    # ------------------------------------------------------------------
    # Learning rate and iterations
    # ------------------------------------------------------------------
    @property
    def learning_rate(self):
        """The learning rate, as Keras' `_get_current_learning_rate()` gives it.

        A numeric rate is the variable holding it (`opt.learning_rate.numpy()`,
        `opt.learning_rate.assign(0.1)`, checked as the constructor checks the
        argument; the next step uses it). A schedule gives its value at the
        current iteration, a callable its return value (NumPy scalars).
        Setting the attribute (`opt.learning_rate = 0.1`) assigns a number
        to that variable, or replaces the rate by a schedule or callable.
        """
        rate = self._learning_rate
        if isinstance(rate, Variable):
            return rate
        return self._read_learning_rate()

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, schedules.LearningRateSchedule) or (
                callable(value) and not isinstance(value, Variable)):
            self._learning_rate = value
            return
        if isinstance(self._learning_rate, schedules.LearningRateSchedule):
            raise TypeError("This optimizer was created with a learning rate schedule, so its "
                            "learning rate cannot be set to a number; got "
                            f"learning_rate={describe(value)}.")
        if isinstance(self._learning_rate, LearningRateVariable):
            self._learning_rate.assign(value)
        else:
            # Keras stores a numeric rate in a floatx variable: 0.001 becomes
            # 0.0010000000474974513 in float32, and that is what updates see.
            self._learning_rate = LearningRateVariable(checked_learning_rate(value))

    def _read_learning_rate(self):
        rate = self._learning_rate
        if isinstance(rate, Variable):
            return rate.value[()]
        if isinstance(rate, schedules.LearningRateSchedule):
            if self._float64_policy:
                with schedules.computing_in(np.float64):
                    return rate(self._raw_iterations())
            return rate(self._raw_iterations())
        value = rate()
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value[()]
        if not is_real_number(value):
            raise argument_error(TypeError, "learning_rate", "a callable returning a number",
                                 value, ", which it returned")
        return value

    def _step_learning_rate(self):
        """The rate a step uses (`_read_learning_rate`), checked as a numeric
        rate is (the constructor's rule): a NaN, infinite or negative value
        from a callable or a schedule (a user's, or an R function of the
        step) would change every parameter without a word. Read while the
        step is planned, before anything changes."""
        rate = self._learning_rate
        if isinstance(rate, Variable):
            return rate.value[()]        # checked when assigned
        value = self._read_learning_rate()
        number = value[()] if isinstance(value, np.ndarray) and value.ndim == 0 else value
        if is_real_number(number) and not (math.isfinite(number) and number >= 0):
            if isinstance(rate, schedules.LearningRateSchedule):
                raise argument_error(ValueError, "learning_rate",
                                     "a LearningRateSchedule returning a finite number >= 0",
                                     number, f", which it returned at step "
                                     f"{self._raw_iterations()}")
            raise argument_error(ValueError, "learning_rate",
                                 "a callable returning a finite number >= 0", number,
                                 ", which it returned")
        return value

    def _raw_iterations(self):
        return int(self._iterations.value)

    @property
    def iterations(self):
        """The step counter, an int64 Variable, as Keras' `iterations`.

        Under gradient accumulation it counts completed updates: Keras then
        returns `floor_divide(counter, gradient_accumulation_steps)`, a value
        computed from the counter; here a read-only Variable holding it.
        The counter itself may be `assign`ed an integer >= 0, as in Keras;
        schedules, accumulation and EMA follow the new count at the next step.
        """
        steps_ = self.gradient_accumulation_steps
        if steps_:
            return counter_snapshot(self._raw_iterations() // steps_)
        return self._iterations

    # ------------------------------------------------------------------
    # Building
    # ------------------------------------------------------------------
    def _slot_kinds(self):
        """Per-variable slots of the update rule, in Keras' variable order."""
        return ()

    def _all_slot_kinds(self):
        kinds = []
        if self.use_ema:
            kinds.append("average")
        if self.gradient_accumulation_steps:
            kinds.append("gradient_accumulator")
        return kinds + list(self._slot_kinds())

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Exempt variables from weight decay: those in `var_list`, and those whose
        name contains a match of any regular expression in `var_names`."""
        if self.built:
            raise ValueError("`exclude_from_weight_decay()` can only be called before the "
                             "optimizer is built.")
        if isinstance(var_names, str):
            var_names = [var_names]          # one name, not a set of characters
        if var_names is not None and (not isinstance(var_names, (list, tuple, set, frozenset)) or
                                      not all(isinstance(item, str) for item in var_names)):
            raise argument_error(TypeError, "var_names", "a string or a list of strings",
                                 var_names)
        names = list(var_names or [])
        for item in names:
            try:
                re.compile(item)
            except re.error as error:
                raise ValueError(f"`var_names` entry {item!r} is not a valid regular "
                                 f"expression: {error}.") from None
        if var_list is not None and not isinstance(var_list, (list, tuple)):
            raise argument_error(TypeError, "var_list", "a list of variables", var_list)
        variables = list(var_list) if var_list is not None else []
        self._exclude_from_decay = (variables, tuple(names))

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        build = cls.__dict__.get("build")
        if build is not None and not getattr(build, "_adopting", False):
            cls.build = _adopting(build)

    @_adopting
    def build(self, variables, compute_dtype=None):
        """Create the slots for `variables` (Variables or writable float NumPy arrays).

        Updates are computed in `compute_dtype`, by default `floatx()` at build
        time, as Keras computes in its float policy; each variable and slot keeps
        its own dtype for storage.
        """
        if self.built:
            # Keras' `build` returns when the optimizer is built. Other
            # variables than those it was built on are refused here rather
            # than at the next step (Keras ignores them, and its next step
            # fails on them).
            if self._same_variables(list(variables)):
                return
            raise ValueError(f"Optimizer '{self.name}' is already built on other variables; "
                             "create a new optimizer to train other variables.")
        pending = self._pending_checkpoint
        if compute_dtype is None:
            compute_dtype = self._build_compute_dtype
        if compute_dtype is None:
            # A loaded optimizer computes as it did when it was saved.
            compute_dtype = (pending and pending.compute_dtype) or config.floatx()
        elif compute_dtype not in _FLOAT_DTYPES and not (
                isinstance(compute_dtype, (type, np.dtype))
                and np.dtype(compute_dtype).name in _FLOAT_DTYPES):
            raise argument_error(ValueError, "compute_dtype",
                                 f"one of {', '.join(_FLOAT_DTYPES)}", compute_dtype)
        variables = _as_list("variables", variables)
        if not variables:
            raise ValueError("`variables` is empty: the optimizer needs at least one variable.")
        self._generic_kinds = []
        seen = set()
        for index, variable in enumerate(variables):
            self._check_trainable(variable, index)
            if id(variable) in seen:
                raise argument_error(ValueError, "variables",
                                     "a variable not listed before it (each variable once)",
                                     variable, index=index)
            seen.add(id(variable))
        _refuse_overlapping_arrays(variables)
        self._trainable_variables = variables
        self._positions = {id(v): i for i, v in enumerate(variables)}
        self._names = [_variable_name(v, i) for i, v in enumerate(variables)]
        storage = FlatStorage(variables, compute_dtype)
        self._shapes = storage.shapes
        self._dtypes = storage.dtypes
        self._storage = storage
        self._slot_variables = {}
        for kind in self._all_slot_kinds():
            self._slot_variables[kind] = [
                Variable._wrap(view, f"{self._names[i]}_{kind}")
                for i, view in enumerate(storage.add_slot(kind))]

        excluded_vars, excluded_names = self._exclude_from_decay
        excluded_ids = {id(v) for v in excluded_vars}
        self._decays = [not (id(v) in excluded_ids or
                             any(re.search(p, self._names[i]) for p in excluded_names))
                        for i, v in enumerate(variables)]
        self._compute_dtype = np.dtype(compute_dtype)
        # Computing in float64 is Keras under floatx "float64" (R's
        # optimizer_apply() by default): the learning rate variable holds the
        # rate as given, in float64, and the built-in schedules compute in
        # float64, so no hyperparameter is rounded to float32 on the way.
        self._float64_policy = self._compute_dtype == np.float64
        if self._float64_policy and isinstance(self._learning_rate, LearningRateVariable) \
                and self._learning_rate.value.dtype != np.float64:
            self._learning_rate._recast(np.float64)
        self.built = True

    def _state_before_build(self):
        """What `_unbuild` needs to undo the build about to happen."""
        rate = self._learning_rate
        rate_dtype = rate.value.dtype if isinstance(rate, LearningRateVariable) else None
        return self._pending_checkpoint, rate_dtype

    def _unbuild(self, before) -> None:
        """Put the optimizer back as it was before its build (`before`, from
        `_state_before_build`): for R's `optimizer_apply()` and
        `apply_to_values`, whose first call builds the optimizer and must
        change nothing when its step is then refused. The next build makes
        storage and slots anew; a loaded checkpoint is pending again."""
        pending, rate_dtype = before
        self.built = False
        self._pending_checkpoint = pending
        if rate_dtype is not None and self._learning_rate.value.dtype != rate_dtype:
            self._learning_rate._recast(rate_dtype)

    def _adopt_pending_checkpoint(self):
        """Hand a loaded checkpoint's state to the optimizer just built: after
        the outermost `build` returns (see `_adopting`), when a subclass's
        own `build` has made its slots too."""
        pending = self._pending_checkpoint
        if pending is None or not self.built:
            return
        self._pending_checkpoint = None
        try:
            pending.adopt(self)
        except Exception:
            # Stay unbuilt, checkpoint still pending, so the caller can retry
            # with the right variables.
            self.built = False
            self._pending_checkpoint = pending
            raise

    @staticmethod
    def _check_trainable(variable, index, argument="variables"):
        """Refuse what cannot be trained: `variable` is element `index` (an
        int, or a tuple of ints) of the caller's argument `argument`.

        A NumPy array that is not a writable float array is refused as
        element of the argument (the R package says what R users pass
        instead: R arrays reach the engine as read-only views).
        """
        if isinstance(variable, Variable):
            array = variable.value
            if array.dtype.name not in _FLOAT_DTYPES:
                raise TypeError(f"Variable '{variable.name}' has dtype {array.dtype}; only "
                                "float16, float32 and float64 variables can be trained.")
            if not array.flags.writeable:
                raise ValueError(f"Variable '{variable.name}' is read-only; the optimizer "
                                 "updates variables in place. Pass a writable copy.")
            return
        if not isinstance(variable, np.ndarray):
            raise argument_error(TypeError, argument, _TRAINABLE, variable, index=index)
        if variable.dtype.name not in _FLOAT_DTYPES:
            raise argument_error(TypeError, argument, _TRAINABLE, variable, index=index,
                                 hint=f"Its dtype is {variable.dtype}; only float16, float32 "
                                      "and float64 variables can be trained.")
        if not variable.flags.writeable:
            raise argument_error(ValueError, argument, _TRAINABLE, variable, index=index,
                                 hint="It is read-only, and the optimizer updates variables "
                                      "in place: pass a writable copy (e.g. np.array(x)).")

    def _slot_view(self, kind, index):
        return self._storage.slot_view(kind, index)

    @property
    def variables(self):
        """The optimizer's own state, in Keras' order (iteration, learning_rate, slots)."""
        result = [self._iterations]
        if isinstance(self._learning_rate, Variable):
            result.append(self._learning_rate)
        if self.built:
            # The slots made at build, in that order, even if a hyperparameter
            # changed since (Keras keeps them too).
            for slots in self._slot_variables.values():
                result.extend(slots)
        return result

    # ------------------------------------------------------------------
    # Applying gradients
    # ------------------------------------------------------------------
    def apply_gradients(self, grads_and_vars):
        """Keras' `apply_gradients([(grad, variable), ...])`.

        Returns:
            The step counter Variable (Keras returns `self._iterations` "for
            compat with tf.keras": the raw count, also under accumulation).
        """
        pairs = _as_list("grads_and_vars", grads_and_vars, "a list of (gradient, variable) pairs")
        for index, pair in enumerate(pairs):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise argument_error(TypeError, "grads_and_vars", "a (gradient, variable) pair",
                                     pair, index=index)
            if not self.built:
                self._check_trainable(pair[1], (index, 1), "grads_and_vars")
        grads = [g for g, _ in pairs]
        variables = [v for _, v in pairs]
        self.apply(grads, variables)
        return self._counter()

    def _counter(self):
        """The raw step counter Variable (what `apply_gradients` returns)."""
        return self._iterations

    def apply(self, grads, trainable_variables=None):
        """Apply one step of `grads` to `trainable_variables` (default: those built on).

        Gradients are only read, never written: read-only arrays are fine, and
        a gradient may share memory with its variable. The step is
        all-or-nothing: an error leaves every variable and slot as it was.
        Steps from several threads are serialised (one at a time).
        Returns None, as Keras' `apply` does (`apply_gradients` returns the
        counter).
        """
        with self._lock:
            # The kernel setting, read once: the whole step runs on one kernel.
            compiled = kernel_choice.compiled_active()
            by_position = self._gradients_by_position(grads, trainable_variables, compiled)
            if by_position is not None:
                self._apply_checked(by_position, compiled)

    def _apply_unscaled(self, grads, trainable_variables, loss_scale, finite_flags):
        """The hook of `LossScaleOptimizer`: check `grads` as `apply` does; when
        all are finite, apply them divided by `loss_scale` (a float32 number)
        and return True; otherwise change nothing and return False (None when
        there are no gradients at all: nothing to do).
        `finite_flags` is a bool scratch buffer of `kernels.CHUNK` elements."""
        with self._lock:
            compiled = kernel_choice.compiled_active()      # once per step, as `apply`
            by_position = self._gradients_by_position(grads, trainable_variables, compiled)
            if by_position is None:
                return None
            for grad in by_position:
                if grad is not None and not kernels.all_finite(grad, finite_flags):
                    return False
            self._apply_checked(by_position, compiled, loss_scale)
            return True

    def _gradients_by_position(self, grads, trainable_variables, compiled):
        """Build if needed, check, and lay out `grads` by variable position (None = no gradient).
        `compiled`: the step runs the compiled kernel (its survey checks the
        usual case in one pass).

        Returns None for no gradients at all: Keras' `apply([])` is a no-op.
        """
        if isinstance(grads, dict):
            raise TypeError("`grads` must be a list with one gradient per variable, in the "
                            "variables' order; got a dict (its keys would be taken for "
                            "gradients). Pass a list, e.g. [grads[name] for name in names].")
        grads = _as_list("grads", grads, "a list of gradients")
        if not grads:
            return None
        if _looks_like_pairs(grads):
            raise TypeError("`grads` holds (gradient, variable) pairs: pass those to "
                            "`apply_gradients(pairs)`, or the gradients alone to "
                            "`apply(grads, variables)`.")
        if trainable_variables is None:
            if not self.built:
                raise ValueError("When `trainable_variables` is not given, the optimizer must "
                                 "already be built (call `build(variables)` first).")
            positions = range(len(self._trainable_variables))
        else:
            trainable_variables = _as_list("trainable_variables", trainable_variables)
            if not self.built:
                # (checked here too, so that a refusal names this argument)
                for index, variable in enumerate(trainable_variables):
                    self._check_trainable(variable, index, "trainable_variables")
                self.build(trainable_variables)
            if self._same_variables(trainable_variables):
                positions = range(len(self._trainable_variables))
            else:
                positions = self._positions_of(trainable_variables)
        if len(grads) != len(positions):
            raise ValueError(f"Got {len(grads)} gradients for {len(positions)} variables; "
                             "pass one gradient (or None) per variable.")
        if type(positions) is range:
            # The common case, checked in bulk: in one compiled pass, else
            # with C-level callables (see `_plain_gradients`).
            if compiled:
                surveyed = self._storage.surveyed(grads, self._param_override)
                if surveyed is not None:
                    return surveyed
            if self._plain_gradients(grads):
                return grads
        by_position = [None] * len(self._trainable_variables)
        missing = []
        for grad, index in zip(grads, positions):
            if grad is None:
                missing.append(self._names[index])
            else:
                by_position[index] = self._checked_gradient(grad, index)
        if missing:
            if len(missing) == len(positions):
                raise ValueError("No gradients provided for any variable.")
            warnings.warn(f"Gradients do not exist for variables {missing}; they are left "
                          "unchanged this step.", stacklevel=_caller_stacklevel())
        return by_position

    def _same_variables(self, variables):
        """True when `variables` are the built-on variables, in build order (the
        usual call): their positions are then 0..n-1 without a lookup each."""
        own = self._trainable_variables
        return len(variables) == len(own) and all(map(operator.is_, variables, own))

    def _plain_gradients(self, grads):
        """True when every gradient is a NumPy array of its variable's shape and a
        numeric dtype: what `_checked_gradient` would accept unchanged (step fast
        path; anything else takes the per-gradient checks and their messages)."""
        # map() with C-level callables: with hundreds of tensors a step, a
        # Python-level loop here costs as much as the update of small tensors.
        if set(map(type, grads)) != {np.ndarray}:
            return False
        return (list(map(_SHAPE, grads)) == self._shapes
                and all(dtype.kind in "fiu" for dtype in set(map(_DTYPE, grads))))

    def _positions_of(self, variables):
        positions = []
        lookup = self._positions
        for index, variable in enumerate(variables):
            position = lookup.get(id(variable))
            if position is None or self._trainable_variables[position] is not variable:
                self._check_trainable(variable, index, "trainable_variables")
                raise argument_error(
                    ValueError, "trainable_variables",
                    f"a variable optimizer '{self.name}' is built on", variable, index=index,
                    hint=f"{_stranger(variable)} is not one of them: use the "
                         "variable objects it was built with, or a new optimizer for other "
                         "variables.")
            positions.append(position)
        if len(set(positions)) != len(positions):
            raise ValueError("A variable appears more than once in `trainable_variables`.")
        return positions

    def _checked_gradient(self, grad, index):
        array = grad if type(grad) is np.ndarray else np.asarray(grad)
        if array.dtype.kind not in "fiu":      # before the shape: a string has shape ()
            raise TypeError(f"Gradient for variable '{self._names[index]}' must be numeric; got "
                            f"{describe(grad)} (dtype {array.dtype}).")
        if array.shape != self._shapes[index]:
            raise ValueError(f"Gradient for variable '{self._names[index]}' has shape "
                             f"{array.shape}, but the variable has shape {self._shapes[index]}.")
        return array

    def _apply_checked(self, grads, compiled, loss_scale=None):
        """One step in Keras' order; `grads[i]` is the checked gradient of
        variable i, or None. `compiled`: the step runs the compiled kernel.
        `loss_scale`: the dynamic scale of a wrapping LossScaleOptimizer, to
        divide the gradients by first.

        Everything that can fail is done first (`_plan_step`); only then does
        anything the caller can see change.
        """
        plan = self._plan_step(grads, compiled, loss_scale)
        update = plan.is_update_step
        if (update and not plan.private and self.weight_decay is None and not self.use_ema
                and self._update_in_place(plan)):
            # The usual step (only the rule runs) done without laying it out.
            self._iterations.value[()] = plan.raw_iterations + 1
            return
        storage = self._storage
        override = self._param_override
        accumulating = self.gradient_accumulation_steps
        work = storage.begin_step(
            plan.grads, private=plan.private, load_slots=update or self.use_ema,
            whole_params=update or self.use_ema,
            pack_params=self.weight_decay is None and not self.use_ema, override=override)
        if loss_scale is not None or self.loss_scale_factor is not None:
            steps.unscale(work, self.loss_scale_factor, loss_scale)
        if accumulating and not update:
            steps.accumulate(work)
        # Per group: the element-wise steps its rule does in its own pass.
        fused = self._fused_steps(work, plan) if update else [None] * len(work)
        if update:
            if accumulating:
                steps.add_accumulated(work, accumulating)
            if self.clipvalue is not None:
                steps.clip_by_value(_unfused(work, fused, "clip"), self.clipvalue)
            elif self.clipnorm is not None:
                steps.clip_by_norm(work, self.clipnorm, storage.scratch)
            elif self.global_clipnorm is not None:
                steps.clip_by_global_norm(work, self.global_clipnorm, loss_scale is not None,
                                          storage.scratch)
            if self.weight_decay is not None:
                steps.decay_weights(_unfused(work, fused, "weight_decay"), self._decays,
                                    self.weight_decay, plan.decay_rates, storage.scratch)
            for index, step in enumerate(work):
                if not step.runs:
                    continue
                if fused[index] is not None:
                    if self._update_group_fused(step, plan.learning_rate, fused[index]):
                        continue
                    # Declined (arrays the rule does not take): the steps
                    # unfused, in Keras' order, before the rule.
                    if fused[index].clip is not None:
                        steps.clip_by_value([step], self.clipvalue)
                    if fused[index].weight_decay is not None:
                        steps.decay_weights([step], self._decays, self.weight_decay,
                                            plan.decay_rates, storage.scratch)
                    fused[index] = None
                self._update_group(step, plan.learning_rate, plan.compiled)
            if accumulating:
                steps.reset_accumulators(work)
        if self.use_ema:
            steps.moving_average(work, self.ema_momentum, plan.iterations == 0,
                                 plan.ema_overwrite, storage.scratch,
                                 averaged=[f is not None and f.ema_average is not None
                                           for f in fused])
        storage.finish_step(work, updated=update, overwritten=plan.ema_overwrite,
                            override=override)
        self._iterations.value[()] = plan.raw_iterations + 1

    def _plan_step(self, grads, compiled, loss_scale):
        """Everything a step needs that can fail, before anything changes: the
        counter's next value, the learning rates (a callable or schedule is
        read here, as often as Keras reads it), writable parameters, and
        gradients that share memory with a parameter (copied, so the step
        computes as if they had been passed as copies)."""
        raw = self._raw_iterations()
        if raw >= _MAX_ITERATIONS:
            raise OverflowError(f"The iteration counter of optimizer '{self.name}' is at its "
                                f"maximum ({raw}); no further step can be counted.")
        steps_ = self.gradient_accumulation_steps
        is_update_step = not steps_ or (raw + 1) % steps_ == 0
        iterations = raw // steps_ if steps_ else raw
        learning_rate = None
        decay_rates = None
        if is_update_step:
            rate = self._learning_rate
            if self.weight_decay is not None:
                if isinstance(rate, (Variable, schedules.LearningRateSchedule)):
                    learning_rate = self._step_learning_rate()
                    decay_rates = [learning_rate] * len(grads)
                else:
                    # Keras reads a callable rate once per decayed variable,
                    # then once for the update.
                    decay_rates = [self._step_learning_rate()
                                   if grad is not None and decays else None
                                   for grad, decays in zip(grads, self._decays)]
            if learning_rate is None:
                learning_rate = self._step_learning_rate()
        ema_overwrite = (self.use_ema and self.ema_overwrite_frequency is not None
                         and (iterations + 1) % self.ema_overwrite_frequency == 0)
        if is_update_step or ema_overwrite:
            self._check_writable()
        grads = self._storage.unaliased(grads, self._param_override)
        private = bool(self._reads_gradients_in_place is False
                       or self.loss_scale_factor is not None or steps_
                       or self.clipnorm is not None or self.clipvalue is not None
                       or self.global_clipnorm is not None or loss_scale is not None)
        return _StepPlan(grads, raw, iterations, is_update_step, private, learning_rate,
                         decay_rates, ema_overwrite, compiled)

    def _check_writable(self):
        """Refuse a step that could not write every parameter (a plain array
        made read-only after build), before any is written."""
        if self._param_override is not None:
            return
        index = self._storage.first_read_only()
        if index is not None:
            raise ValueError(f"Variable '{self._names[index]}' (position {index}) is read-only; "
                             "the optimizer updates variables in place. Make it writable again "
                             "(or pass a writable copy).")

    def _update_group(self, step, learning_rate, compiled):
        """Apply the update rule to the members of `step` (a
        `flat_state.GroupStep`) that have a gradient; `compiled`: the step
        runs the compiled kernel (a rule that has one uses it)."""
        raise NotImplementedError

    def _update_in_place(self, plan):
        """A step that runs only the rule (no preprocessing, weight decay or
        EMA): apply it straight to the storage when the subclass's rule can,
        without `begin_step` (for small updates that layout costs more than
        the update); False, having changed nothing, when it cannot (the step
        then runs laid out)."""
        return False

    def _fuses_steps(self):
        """True when `_update_group_fused` may do clipvalue, weight decay and
        the EMA in the rule's own pass on steps that run the compiled kernel
        (a subclass whose rule can says so)."""
        return False

    def _update_group_fused(self, step, learning_rate, fused):
        """Apply the update rule to every member of `step` with the steps
        `fused` (a `kernel_choice.FusedSteps`) in the same pass, bit for bit
        as the unfused steps would; return False, having changed nothing,
        when it cannot (the caller then runs them unfused)."""
        return False

    def _fused_steps(self, work, plan):
        """Per group step of an update step: the steps its rule does in its
        pass (`steps.fusable`), or None."""
        if not (plan.compiled and self._fuses_steps()) or (
                self.clipvalue is None and self.weight_decay is None and not self.use_ema):
            return [None] * len(work)
        return [steps.fusable(step, clipvalue=self.clipvalue, weight_decay=self.weight_decay,
                              decays=self._decays, decay_rates=plan.decay_rates,
                              learning_rate=plan.learning_rate,
                              ema_momentum=self.ema_momentum if self.use_ema else None,
                              first=plan.iterations == 0)
                for step in work]

    # ------------------------------------------------------------------
    # Functional use, EMA, loss scaling
    # ------------------------------------------------------------------
    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        """Compute one step without changing anything given: returns
        (new trainable values, new optimizer variable values) as NumPy arrays."""
        return self._stateless_run(self.variables, optimizer_variables, trainable_variables,
                                   lambda: self.apply(grads))

    def _stateless_run(self, own, optimizer_variables, trainable_variables, step):
        """The protected hook behind `stateless_apply` (a LossScaleOptimizer
        passes its own variables and step): with the Variables `own` set to
        `optimizer_variables`, and copies of `trainable_variables` standing in
        for the variables this optimizer was built on, call `step()`; then
        restore everything. Returns (new trainable values, new values of
        `own`)."""
        if not self.built:
            raise ValueError("`stateless_apply` needs a built optimizer: call `build()` first.")
        optimizer_variables = list(optimizer_variables)
        trainable_variables = list(trainable_variables)
        if len(optimizer_variables) != len(own):
            raise ValueError(f"`optimizer_variables` has {len(optimizer_variables)} entries; "
                             f"this optimizer has {len(own)} variables.")
        if len(trainable_variables) != len(self._trainable_variables):
            raise ValueError(f"`trainable_variables` has {len(trainable_variables)} entries; the "
                             f"optimizer was built on {len(self._trainable_variables)}.")
        values = []
        for index, value in enumerate(trainable_variables):
            array = np.array(value, dtype=self._dtypes[index], copy=True)
            if array.shape != self._shapes[index]:
                raise ValueError(f"`trainable_variables[{index}]` has shape {array.shape}; "
                                 f"expected {self._shapes[index]}.")
            values.append(array)
        with self._lock:
            saved = [v.numpy() for v in own]
            try:
                for variable, value in zip(own, optimizer_variables):
                    variable.assign(value)
                self._param_override = values
                step()
                new_state = [v.numpy() for v in own]
            finally:
                self._param_override = None
                for variable, value in zip(own, saved):
                    variable.assign(value)
        return values, new_state

    def finalize_variable_values(self, var_list=None):
        """With `use_ema`, overwrite the variables with their moving averages."""
        if not self.use_ema or not self.built:
            return
        variables = self._trainable_variables if var_list is None else list(var_list)
        arrays = self._storage.param_arrays()
        with self._lock:
            for index in self._positions_of(variables):
                np.copyto(arrays[index], self._slot_view("average", index))

    def scale_loss(self, loss):
        """Multiply the loss by `loss_scale_factor` (when set)."""
        return loss if self.loss_scale_factor is None else loss * self.loss_scale_factor

    # ------------------------------------------------------------------
    # Config and checkpoints
    # ------------------------------------------------------------------
    def get_config(self):
        """The optimizer's arguments as a JSON-ready dict with Keras' keys.

        A numeric learning rate appears as the float its floatx variable
        holds, a schedule as `schedules.serialize(schedule)`, and a callable
        as an entry naming it (`{"class_name": "function", ...}`), which
        `from_config` resolves only through `custom_objects`.

        Returns:
            A dict that `from_config` turns back into an equal optimizer.
        """
        rate = self._learning_rate
        # As Keras' BaseOptimizer.get_config(): float(self._learning_rate.numpy()),
        # the floatx variable's value (0.1 reads 0.10000000149011612 in float32).
        # (R's `$get_config()` puts back the number given: R/classes.R.)
        if isinstance(rate, Variable):
            rate = float(rate.value)
        elif isinstance(rate, schedules.LearningRateSchedule):
            rate = schedules.serialize(rate)
        else:
            rate = schedules.serialize_function(rate)
        return {
            "name": self.name,
            "learning_rate": rate,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
            "use_ema": self.use_ema,
            "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "loss_scale_factor": self.loss_scale_factor,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Rebuild from `get_config()`, as Keras' `Optimizer.from_config`.

        Args:
            config: a dict from `get_config()` (or Keras' own config).
            custom_objects: None or a dict mapping class names to your own
                `LearningRateSchedule` subclasses, and function names to the
                callable learning rate a config names. Built-in schedules
                need nothing.

        Returns:
            A new, unbuilt optimizer.

        Raises:
            ValueError: for a schedule class or a function that is neither
                built in nor in `custom_objects`.
        """
        config = dict(config)
        rate = config.get("learning_rate")
        if isinstance(rate, dict) and rate.get("class_name") == "function":
            config["learning_rate"] = schedules.deserialize_function(rate, custom_objects)
        elif isinstance(rate, dict):
            config["learning_rate"] = schedules.deserialize(rate, custom_objects=custom_objects)
        return cls(**config)

    # -- checkpoint state: read and validated by checkpoint.py -------------
    # What an exact resume needs beyond get_config(), as plain values (see
    # docs/checkpoint-format.md). checkpoint.py checks a loaded state against
    # this optimizer before handing it back; these two methods only move it.
    def _checkpoint_state(self):
        """A dict: "iterations" (the raw count), "learning_rate_dtype" (None for a
        schedule or callable), "excluded_names", "excluded_variables" (names of
        variables given to exclude_from_weight_decay while unbuilt), and, once
        built, "built": True, "compute_dtype", "names", "shapes", "dtypes",
        "excluded" (positions exempt from weight decay) and "slots" ({kind: one
        array per variable} in `_all_slot_kinds()` order, the live storage)."""
        if self._pending_checkpoint is not None:
            return self._pending_checkpoint.state
        rate = self._learning_rate
        excluded_variables, excluded_names = self._exclude_from_decay
        state = {"iterations": self._raw_iterations(),
                 "learning_rate_dtype": rate.dtype if isinstance(rate, Variable) else None,
                 "excluded_names": list(excluded_names), "built": self.built}
        if not self.built:
            state["excluded_variables"] = [_variable_name(v, i)
                                           for i, v in enumerate(excluded_variables)]
            return state
        state.update(
            compute_dtype=self._compute_dtype.name, names=list(self._names),
            shapes=[list(shape) for shape in self._shapes],
            dtypes=_dtype_names(self._dtypes),
            excluded=[i for i, decays in enumerate(self._decays) if not decays],
            slots={kind: [v.value for v in self._slot_variables[kind]]
                   for kind in self._all_slot_kinds()})
        return state

    def _restore_checkpoint_state(self, state, pending=None):
        """Take a checked state: the counter now; the rest now if built, else
        `pending.adopt(self)` runs when `build()` has made the slots (and
        `pending.compute_dtype` is the default compute dtype of that build)."""
        self._iterations.value[()] = state["iterations"]
        if not state["built"]:
            return
        if pending is not None:
            self._pending_checkpoint = pending
            return
        excluded = set(state["excluded"])
        self._decays = [i not in excluded for i in range(len(self._decays))]
        for kind, arrays in state["slots"].items():
            for variable, array in zip(self._slot_variables[kind], arrays):
                np.copyto(variable.value, array)

    def __repr__(self):
        return (f"<{type(self).__name__} name={self.name!r} "
                f"learning_rate={self._read_learning_rate()!r} "
                f"iterations={int(np.asarray(self.iterations))} built={self.built}>")


def _byte_range(array):
    """[first byte, one past the last byte) of the memory `array` spans."""
    start = end = array.__array_interface__["data"][0]
    for extent, stride in zip(array.shape, array.strides):
        if stride < 0:
            start += stride * (extent - 1)
        else:
            end += stride * (extent - 1)
    return start, end + array.itemsize


def _refuse_overlapping_arrays(variables):
    """Refuse plain arrays that share memory with one another (views of one
    buffer that overlap): each parameter is updated as if it had its own
    memory, so an element two of them hold would be updated twice, or once
    with either result, depending on how the step is laid out (Keras'
    variables own their memory). Arrays whose spans overlap (sorted by
    start) are compared exactly (np.shares_memory: interleaved views such as
    a[::2] and a[1::2] span the same bytes but share none)."""
    spans = sorted((_byte_range(v), index) for index, v in enumerate(variables)
                   if type(v) is np.ndarray and v.size)
    open_spans = []         # (end, index) of the spans that may reach later ones
    for (start, end), index in spans:
        open_spans = [(e, i) for e, i in open_spans if e > start]
        for _, other in open_spans:
            if np.shares_memory(variables[index], variables[other]):
                first, second = sorted((index, other))
                raise argument_error(
                    ValueError, "variables", "an array sharing no memory with the others",
                    variables[second], index=second,
                    hint=f"It shares memory with the variable at position {first} (views of "
                         "one buffer): pass separate arrays (e.g. np.array(x)).")
        open_spans.append((end, index))
