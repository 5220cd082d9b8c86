#' Learning rate schedules
#'
#' Keras 3's learning rate schedules, computed by the engine (in float32, as
#' Keras does). Pass one as `learning_rate` to [optimizer_rmsprop()]: it is
#' evaluated at the optimizer's raw iteration count before each update. A
#' schedule (R class `rmsprop_schedule`) is callable: `schedule(10)` gives
#' the rate at step 10, `schedule(0:100)` one rate per step, and
#' `plot(schedule)` draws them (see [print.rmsprop_schedule]). For a schedule
#' written as an R function, see [learning_rate_schedule()].
#'
#' * `learning_rate_schedule_exponential_decay()`:
#'   `initial_learning_rate * decay_rate ^ (step / decay_steps)` (the
#'   exponent floored when `staircase = TRUE`).
#' * `learning_rate_schedule_piecewise_constant_decay()`: `values[1]` while
#'   `step <= boundaries[1]`, `values[i + 1]` for
#'   `boundaries[i] < step <= boundaries[i + 1]`, the last value after.
#' * `learning_rate_schedule_polynomial_decay()`: from
#'   `initial_learning_rate` to `end_learning_rate` in `decay_steps` steps,
#'   along `(1 - step / decay_steps) ^ power` (restarting when `cycle`).
#' * `learning_rate_schedule_inverse_time_decay()`:
#'   `initial_learning_rate / (1 + decay_rate * step / decay_steps)`.
#' * `learning_rate_schedule_cosine_decay()`: cosine decay to
#'   `alpha * initial_learning_rate`, after an optional linear warmup to
#'   `warmup_target` over `warmup_steps`.
#' * `learning_rate_schedule_cosine_decay_restarts()`: cosine decay with warm
#'   restarts (SGDR), periods growing by `t_mul`, peaks shrinking by `m_mul`.
#'
#' @param initial_learning_rate A number: the rate at step 0.
#' @param decay_steps A whole number > 0: the decay period, in steps.
#' @param decay_rate A number: the decay rate.
#' @param staircase `TRUE` to decay at discrete intervals.
#' @param name String: the schedule's name.
#' @param boundaries Numeric vector of increasing step boundaries.
#' @param values Numeric vector of rates, one more than `boundaries`.
#' @param end_learning_rate A number: the final rate.
#' @param power A number: the power of the polynomial.
#' @param cycle `TRUE` to restart the decay after `decay_steps`.
#' @param alpha A number: the minimum rate, as a fraction of the initial one.
#' @param warmup_target A number or `NULL`: the rate reached at the end of
#'   the warmup (`NULL`: no warmup).
#' @param warmup_steps A whole number >= 0: the number of warmup steps.
#' @param first_decay_steps A whole number > 0: the length of the first
#'   period.
#' @param t_mul A number: how much longer each period is than the previous.
#' @param m_mul A number: how much lower each period's initial rate is.
#' @return A learning rate schedule: the engine's Python object, of R class
#'   `rmsprop_schedule`.
#' @name learning_rate_schedule
#' @examplesIf rmsprop::engine_available()
#' schedule <- learning_rate_schedule_exponential_decay(0.1, decay_steps = 10,
#'                                                      decay_rate = 0.5)
#' schedule(20)  # 0.1 * 0.5^2
#' opt <- optimizer_rmsprop(learning_rate = schedule)
#' opt$learning_rate
#'
#' learning_rate_schedule_piecewise_constant_decay(boundaries = 100,
#'                                                 values = c(0.1, 0.01))(150)
#' learning_rate_schedule_cosine_decay(1, decay_steps = 100)(50)
#' learning_rate_schedule_cosine_decay_restarts(1, first_decay_steps = 10)(10)
#' learning_rate_schedule_polynomial_decay(1, decay_steps = 10)(5)
#' learning_rate_schedule_inverse_time_decay(1, decay_steps = 1, decay_rate = 1)(1)
NULL

# (`values`: the caller's arguments, named as the engine's, for messages)
new_schedule <- function(class_name, args, values = parent.frame()) {
  schedules <- engine()$schedules
  py_try(do.call(schedules[[class_name]], args), values)
}

# Exponential and inverse-time decay take the same arguments (the engine's
# `_StepDecay`).
step_decay_schedule <- function(class_name, initial_learning_rate, decay_steps, decay_rate,
                                staircase, name) {
  new_schedule(class_name, list(
    initial_learning_rate = as_py_value(initial_learning_rate),
    decay_steps = as_py_int(decay_steps),
    decay_rate = as_py_value(decay_rate),
    staircase = as_py_value(staircase),
    name = as_py_value(name)
  ))
}

#' @rdname learning_rate_schedule
#' @export
learning_rate_schedule_exponential_decay <- function(initial_learning_rate, decay_steps,
                                                     decay_rate, staircase = FALSE,
                                                     name = "ExponentialDecay") {
  step_decay_schedule("ExponentialDecay", initial_learning_rate, decay_steps, decay_rate,
                      staircase, name)
}

#' @rdname learning_rate_schedule
#' @export
learning_rate_schedule_piecewise_constant_decay <- function(boundaries, values,
                                                            name = "PiecewiseConstant") {
  new_schedule("PiecewiseConstantDecay", list(
    boundaries = as_py_list(boundaries, whole = TRUE),
    values = as_py_list(values),
    name = as_py_value(name)
  ))
}

#' @rdname learning_rate_schedule
#' @export
learning_rate_schedule_polynomial_decay <- function(initial_learning_rate, decay_steps,
                                                    end_learning_rate = 1e-04, power = 1,
                                                    cycle = FALSE, name = "PolynomialDecay") {
  new_schedule("PolynomialDecay", list(
    initial_learning_rate = as_py_value(initial_learning_rate),
    decay_steps = as_py_int(decay_steps),
    end_learning_rate = as_py_value(end_learning_rate),
    power = as_py_value(power),
    cycle = as_py_value(cycle),
    name = as_py_value(name)
  ))
}

#' @rdname learning_rate_schedule
#' @export
learning_rate_schedule_inverse_time_decay <- function(initial_learning_rate, decay_steps,
                                                      decay_rate, staircase = FALSE,
                                                      name = "InverseTimeDecay") {
  step_decay_schedule("InverseTimeDecay", initial_learning_rate, decay_steps, decay_rate,
                      staircase, name)
}

#' @rdname learning_rate_schedule
#' @export
learning_rate_schedule_cosine_decay <- function(initial_learning_rate, decay_steps, alpha = 0,
                                                name = "CosineDecay", warmup_target = NULL,
                                                warmup_steps = 0) {
  new_schedule("CosineDecay", list(
    initial_learning_rate = as_py_value(initial_learning_rate),
    decay_steps = as_py_int(decay_steps),
    alpha = as_py_value(alpha),
    name = as_py_value(name),
    warmup_target = as_py_value(warmup_target),
    warmup_steps = as_py_int(warmup_steps)
  ))
}

#' @rdname learning_rate_schedule
#' @export
learning_rate_schedule_cosine_decay_restarts <- function(initial_learning_rate,
                                                         first_decay_steps, t_mul = 2,
                                                         m_mul = 1, alpha = 0,
                                                         name = "SGDRDecay") {
  new_schedule("CosineDecayRestarts", list(
    initial_learning_rate = as_py_value(initial_learning_rate),
    first_decay_steps = as_py_int(first_decay_steps),
    t_mul = as_py_value(t_mul),
    m_mul = as_py_value(m_mul),
    alpha = as_py_value(alpha),
    name = as_py_value(name)
  ))
}

#' A learning rate schedule from an R function
#'
#' Wraps an R function of the step as a learning rate schedule, like
#' keras3's `LearningRateSchedule()`: the optimizer calls it with its raw
#' iteration count (a double: 0 at the first step) before each update, and
#' uses the number it returns. Passing such a function directly as
#' `learning_rate` to [optimizer_rmsprop()] does the same; a function of no
#' arguments is called without the step.
#'
#' @param fn An R function of one argument, the step, returning one number
#'   (or, called with a vector of steps, one number per step).
#' @param name String: the schedule's name.
#' @return A learning rate schedule (R class `rmsprop_schedule`), callable
#'   with a step or a vector of steps.
#' @seealso [learning_rate_schedule_exponential_decay()] and the other
#'   built-in schedules; [plot.rmsprop_schedule()].
#' @export
#' @examplesIf rmsprop::engine_available()
#' sched <- learning_rate_schedule(function(step) 0.1 / (1 + step))
#' sched(0:3)
#' opt <- optimizer_rmsprop(learning_rate = sched)
#' # the same, directly:
#' opt <- optimizer_rmsprop(learning_rate = function(step) 0.1 / (1 + step))
learning_rate_schedule <- function(fn, name = "RFunctionSchedule") {
  if (!is.function(fn)) arg_error("fn", "a function of the step", fn)
  py_try(r_schedule_class()(fn, as_py_value(name)), environment())
}

# The engine schedule class whose __call__ calls an R function (made once per
# session). get_config() holds the function, so that `optimizer_rmsprop()`
# rebuilds the schedule from an optimizer's config.
r_schedule_class <- function() {
  cls <- .rmsprop$r_schedule_class
  if (is.null(cls)) {
    schedules <- engine()$schedules
    cls <- reticulate::PyClass(r_schedule_class_name, inherit = schedules$LearningRateSchedule,
                               defs = list(
      # (R functions live in the R session: there is no Python module to
      # import this class from)
      `__module__` = "R",
      `__init__` = function(self, fn, name) {
        self$fn <- fn
        self$name <- name
        NULL
      },
      `__call__` = function(self, step) {
        as_py_value(self$fn(as.double(reticulate::py_to_r(step))))
      },
      get_config = function(self) list(fn = self$fn, name = self$name)
    ))
    .rmsprop$r_schedule_class <- cls
  }
  cls
}

r_schedule_class_name <- "RFunctionSchedule"

# A learning rate as the engine wants it: a number; a schedule; an R
# function of the step (a schedule) or of nothing (a callable); a
# schedule's config, as `get_config()` gives it.
as_py_learning_rate <- function(x) {
  if (is.function(x) && !inherits(x, "python.builtin.object")) {
    engine()
    if (!length(formals(x))) {
      fn <- x
      return(reticulate::r_to_py(function() as_py_value(fn())))
    }
    return(learning_rate_schedule(x))
  }
  if (is.list(x) && !is.object(x) && is.character(x$class_name)) {
    if (identical(x$class_name, r_schedule_class_name)) {
      return(learning_rate_schedule(x$config$fn, x$config$name))
    }
    # (reticulate turns the lists of a piecewise schedule into R vectors)
    config <- x
    for (key in c("boundaries", "values")) {
      if (is.numeric(config$config[[key]])) {
        config$config[[key]] <- as_py_list(config$config[[key]], whole = key == "boundaries")
      }
    }
    return(py_try(engine()$schedules$deserialize(config)))
  }
  as_py_value(x)
}
