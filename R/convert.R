# Argument checks and R -> Python conversions, all in one place.
#
# Every exported function validates its arguments here before Python is
# touched, and converts them to what the engine wants:
#   * numbers            -> double (Python float)
#   * whole step counts  -> integer (Python int)
#   * NULL               -> NULL (Python None)
#   * names              -> list() of strings (a Python list, also at length 1)
#   * numeric vectors    -> arrays with a dim (1-d NumPy arrays, not lists)
#   * an R function      -> a Python callable taking no arguments that returns
#                           a single number (learning rates)
# Errors name the offending argument.

# -- errors -------------------------------------------------------------------

rmsprop_abort <- function(message, class = NULL) {
  stop(structure(
    class = c(class, "rmsprop_error", "error", "condition"),
    list(message = message, call = NULL)
  ))
}

describe_value <- function(x) {
  if (is.null(x)) return("NULL")
  if (is.function(x)) return("a function")
  if (inherits(x, "python.builtin.object")) {
    return(paste0("a Python object of class ", class(x)[[1L]]))
  }
  if (is.atomic(x) && length(x) == 1L && is.null(dim(x))) {
    return(paste(deparse(unname(x)), collapse = ""))
  }
  if (is.atomic(x)) {
    return(sprintf("a %s vector of length %d", typeof(x), length(x)))
  }
  sprintf("an object of type '%s'", typeof(x))
}

arg_error <- function(arg, what, x) {
  rmsprop_abort(sprintf("`%s` must be %s; got %s.", arg, what, describe_value(x)),
                class = "rmsprop_argument_error")
}

# The message of a Python exception raised by the engine, without reticulate's
# traceback hint.
python_message <- function(e) {
  text <- tryCatch(reticulate::py_str(e), error = function(...) NULL)
  if (!is.character(text) || length(text) != 1L || !nzchar(text)) {
    text <- conditionMessage(e)
    text <- sub("\nRun `reticulate::py_last_error\\(\\)` for details\\.?\\s*$", "", text)
    text <- sub("^[A-Za-z_.]*(Error|Exception|Warning): ", "", text)
  }
  text
}

# Evaluate `expr` (a call into the engine); a Python exception becomes a clean
# R error carrying the Python message.
py_try <- function(expr) {
  tryCatch(expr, python.builtin.BaseException = function(e) {
    rmsprop_abort(python_message(e), class = "rmsprop_engine_error")
  })
}

# -- scalar checks -----------------------------------------------------------

is_number <- function(x) {
  is.numeric(x) && length(x) == 1L && !is.na(x) && is.null(dim(x))
}

check_number <- function(x, arg, null_ok = FALSE, min = -Inf, max = Inf,
                         min_open = FALSE) {
  if (is.null(x)) {
    if (null_ok) return(NULL)
    arg_error(arg, "a number", x)
  }
  if (!is_number(x)) {
    arg_error(arg, if (null_ok) "a single number or NULL" else "a single number", x)
  }
  x <- as.double(x)
  if (!is.finite(x)) arg_error(arg, "a finite number", x)
  if (x < min || (min_open && x <= min) || x > max) {
    range <- if (is.finite(max)) {
      sprintf("in %s%s, %s]", if (min_open) "(" else "[", format(min), format(max))
    } else {
      sprintf("%s %s", if (min_open) ">" else ">=", format(min))
    }
    arg_error(arg, paste("a number", range), x)
  }
  x
}

# A whole number (an R user writes `3`, a double) -> an R integer, which
# reaches Python as an int.
check_count <- function(x, arg, null_ok = FALSE, min = -Inf) {
  if (is.null(x)) {
    if (null_ok) return(NULL)
    arg_error(arg, "a whole number", x)
  }
  if (!is_number(x) || !is.finite(x) || x != round(x) ||
      abs(x) > .Machine$integer.max) {
    arg_error(arg, if (null_ok) "a whole number or NULL" else "a whole number", x)
  }
  if (x < min) arg_error(arg, sprintf("a whole number >= %s", format(min)), x)
  as.integer(x)
}

check_flag <- function(x, arg) {
  if (!is.logical(x) || length(x) != 1L || is.na(x)) {
    arg_error(arg, "TRUE or FALSE", x)
  }
  x
}

check_string <- function(x, arg, null_ok = FALSE) {
  if (is.null(x) && null_ok) return(NULL)
  if (!is.character(x) || length(x) != 1L || is.na(x) || !nzchar(x)) {
    arg_error(arg, if (null_ok) "a non-empty string or NULL" else "a non-empty string", x)
  }
  x
}

check_choice <- function(x, arg, choices) {
  if (!is.character(x) || length(x) != 1L || is.na(x) || !(x %in% choices)) {
    arg_error(arg, paste0("one of ", paste0('"', choices, '"', collapse = ", ")), x)
  }
  x
}

check_dots_empty <- function(...) {
  if (...length()) {
    dots <- names(list(...))
    shown <- if (is.null(dots)) "" else paste(dots[nzchar(dots)], collapse = ", ")
    rmsprop_abort(
      sprintf("`...` must be empty; got %d unexpected argument(s)%s.", ...length(),
              if (nzchar(shown)) paste0(": ", shown) else ""),
      class = "rmsprop_argument_error")
  }
}

# -- vectors and lists ---------------------------------------------------------

# A numeric vector -> an R list of numbers (a Python list, also at length 1).
as_py_number_list <- function(x, arg, whole = FALSE, min_length = 1L) {
  if (!is.numeric(x) || anyNA(x) || !all(is.finite(x))) {
    arg_error(arg, "a numeric vector of finite numbers", x)
  }
  if (length(x) < min_length) {
    arg_error(arg, sprintf("a numeric vector of length >= %d", min_length), x)
  }
  x <- as.vector(x)
  if (whole && all(x == round(x)) && all(abs(x) <= .Machine$integer.max)) {
    x <- as.integer(x)
  } else {
    x <- as.double(x)
  }
  as.list(x)
}

# -- learning rates ------------------------------------------------------------

is_schedule <- function(x) inherits(x, "rmsprop.schedules.LearningRateSchedule")

is_py_callable <- function(x) {
  inherits(x, "python.builtin.object") &&
    isTRUE(tryCatch(reticulate::py_has_attr(x, "__call__"), error = function(e) FALSE))
}

# A number, a learning_rate_schedule_*() object, an R function of no
# arguments (or a Python callable) returning a number.
as_py_learning_rate <- function(x, arg = "learning_rate") {
  if (is.numeric(x)) return(check_number(x, arg, min = 0))
  if (is_schedule(x)) return(x)
  if (is.function(x)) {
    fun <- x
    rate <- function(...) {
      value <- fun()
      if (!is.numeric(value) || length(value) != 1L || is.na(value)) {
        stop(sprintf("The `%s` function must return a single number; it returned %s.",
                     arg, describe_value(value)), call. = FALSE)
      }
      as.double(value)
    }
    return(reticulate::r_to_py(rate))
  }
  if (is_py_callable(x)) return(x)
  arg_error(arg, "a number, a learning_rate_schedule_*() object or a function", x)
}

# -- optimizers ------------------------------------------------------------------

optimizer_classes <- c("rmsprop.base_optimizer.BaseOptimizer",
                       "rmsprop.loss_scale.LossScaleOptimizer")

check_optimizer <- function(x, arg = "optimizer") {
  if (!inherits(x, optimizer_classes)) {
    arg_error(arg, "an rmsprop optimizer (from optimizer_rmsprop() or optimizer_loss_scale())", x)
  }
  if (reticulate::py_is_null_xptr(x)) {
    rmsprop_abort(sprintf(paste0("`%s` is a Python object from an earlier R session; ",
                                 "it is no longer valid. Save optimizers with save_optimizer()."),
                          arg),
                  class = "rmsprop_argument_error")
  }
  x
}

check_path <- function(x, arg = "path") {
  if (!is.character(x) || length(x) != 1L || is.na(x) || !nzchar(x)) {
    arg_error(arg, "a file path (a single string)", x)
  }
  path.expand(x)
}
