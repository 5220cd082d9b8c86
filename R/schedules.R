#' Learning rate schedules
#'
#' Keras 3's learning rate schedules, computed by the engine (in float32, as
#' Keras does). Pass one as `learning_rate` to [optimizer_rmsprop()]: it is
#' evaluated at the optimizer's raw iteration count before each update. A
#' schedule is a Python object; call it with a step, e.g. `schedule(10)`, to
#' see the rate at that step.
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
#' @return A learning rate schedule: the engine's Python object (class
#'   `rmsprop.schedules.<ClassName>`, inheriting from
#'   `rmsprop.schedules.LearningRateSchedule`).
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

new_schedule <- function(class_name, args) {
  schedules <- engine()$schedules
  py_try(do.call(schedules[[class_name]], args))
}

# Exponential and inverse-time decay take the same arguments (the engine's
# `_StepDecay`), checked here once.
step_decay_schedule <- function(class_name, initial_learning_rate, decay_steps, decay_rate,
                                staircase, name) {
  new_schedule(class_name, list(
    initial_learning_rate = check_number(initial_learning_rate, "initial_learning_rate"),
    decay_steps = check_count(decay_steps, "decay_steps", min = 1),
    decay_rate = check_number(decay_rate, "decay_rate"),
    staircase = check_flag(staircase, "staircase"),
    name = check_string(name, "name")
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
  boundaries <- as_py_number_list(boundaries, "boundaries", whole = TRUE)
  values <- as_py_number_list(values, "values", min_length = 2L)
  if (length(values) != length(boundaries) + 1L) {
    rmsprop_abort(sprintf(paste0("`values` must have one element more than `boundaries`; ",
                                 "got %d values for %d boundaries."),
                          length(values), length(boundaries)),
                  class = "rmsprop_argument_error")
  }
  if (is.unsorted(unlist(boundaries))) {
    arg_error("boundaries", "in increasing order", unlist(boundaries))
  }
  new_schedule("PiecewiseConstantDecay", list(
    boundaries = boundaries, values = values, name = check_string(name, "name")
  ))
}

#' @rdname learning_rate_schedule
#' @export
learning_rate_schedule_polynomial_decay <- function(initial_learning_rate, decay_steps,
                                                    end_learning_rate = 1e-04, power = 1,
                                                    cycle = FALSE, name = "PolynomialDecay") {
  new_schedule("PolynomialDecay", list(
    initial_learning_rate = check_number(initial_learning_rate, "initial_learning_rate"),
    decay_steps = check_count(decay_steps, "decay_steps", min = 1),
    end_learning_rate = check_number(end_learning_rate, "end_learning_rate"),
    power = check_number(power, "power"),
    cycle = check_flag(cycle, "cycle"),
    name = check_string(name, "name")
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
    initial_learning_rate = check_number(initial_learning_rate, "initial_learning_rate"),
    decay_steps = check_count(decay_steps, "decay_steps", min = 1),
    alpha = check_number(alpha, "alpha"),
    name = check_string(name, "name"),
    warmup_target = check_number(warmup_target, "warmup_target", null_ok = TRUE),
    warmup_steps = check_count(warmup_steps, "warmup_steps", min = 0)
  ))
}

#' @rdname learning_rate_schedule
#' @export
learning_rate_schedule_cosine_decay_restarts <- function(initial_learning_rate,
                                                         first_decay_steps, t_mul = 2,
                                                         m_mul = 1, alpha = 0,
                                                         name = "SGDRDecay") {
  new_schedule("CosineDecayRestarts", list(
    initial_learning_rate = check_number(initial_learning_rate, "initial_learning_rate"),
    first_decay_steps = check_count(first_decay_steps, "first_decay_steps", min = 1),
    t_mul = check_number(t_mul, "t_mul"),
    m_mul = check_number(m_mul, "m_mul"),
    alpha = check_number(alpha, "alpha"),
    name = check_string(name, "name")
  ))
}
