# R -> Python conversions, and Python's answers back as R conditions.
#
# As keras3's wrappers do (its `capture_args()` converters), R only converts
# the types R users write to what the engine wants, and the engine checks
# every argument. Its messages reach R as classed R conditions, argument
# errors with the value written as R writes it (r_argument_message()):
#   * whole numbers      -> Python int (an R user writes `3`, a double)
#   * NA (any type)      -> NaN, which every engine check refuses (reticulate
#                           would send a logical NA as True, an integer NA as
#                           -2147483648 and a character NA as "NA")
#   * NULL               -> None
#   * numeric vectors    -> Python lists, also at length 1 (schedule boundaries)
#   * an R function      -> a Python callable (learning rates, see schedules.R)
# What only R can check (R structures: list names, `...` names, dims of
# params and grads, NA in them) is checked in R.

# -- conditions -----------------------------------------------------------------

rmsprop_abort <- function(message, class = NULL) {
  stop(structure(
    class = c(class, "rmsprop_error", "error", "condition"),
    list(message = message, call = NULL)
  ))
}

rmsprop_warn <- function(message, class = NULL) {
  warning(structure(
    class = c(class, "rmsprop_warning", "warning", "condition"),
    list(message = message, call = NULL)
  ))
}

# How an R value is named in messages: as R writes it (`NA`, `NaN`, `Inf`,
# `TRUE`, `NULL`, `"a"`, `c(1, 2)`), or described when it is long.
describe_value <- function(x) {
  if (is.null(x)) return("NULL")
  if (is.function(x)) return("a function")
  if (inherits(x, "rmsprop_variable")) {
    return(sprintf("the engine variable '%s'",
                   reticulate::py_to_r(reticulate::py_get_attr(x, "name"))))
  }
  if (inherits(x, "python.builtin.object")) {
    return(paste0("a Python object of class ", class(x)[[1L]]))
  }
  if (is.data.frame(x)) return(sprintf("a data frame with %d column%s", ncol(x), plural(ncol(x))))
  if (is.factor(x)) return(sprintf("a factor of length %d", length(x)))
  if (is.atomic(x) && is.null(dim(x)) && length(x) >= 1L && length(x) <= 6L &&
      typeof(x) %in% c("logical", "integer", "double", "character")) {
    text <- r_literal(unname(x))
    if (nchar(text) <= 80L) return(text)
  }
  if (is.atomic(x) && !is.null(dim(x))) {
    return(sprintf("%s %s array of dim c(%s)", article(r_type(x)), r_type(x),
                   paste(dim(x), collapse = ", ")))
  }
  if (is.atomic(x)) {
    return(sprintf("%s %s vector of length %d", article(r_type(x)), r_type(x), length(x)))
  }
  if (is.list(x)) return(sprintf("a list of length %d", length(x)))
  sprintf("an object of type '%s'", typeof(x))
}

# A short atomic vector as R code, the way a user writes it: 3 rather than
# 3L (reticulate gives Python ints back as R integers), NA rather than
# NA_real_.
r_literal <- function(x) {
  items <- vapply(seq_along(x), function(i) {
    v <- x[[i]]
    if (is.na(v) && !is.nan(v)) return("NA")
    if (is.integer(v)) return(as.character(v))
    paste(deparse(v), collapse = "")
  }, character(1))
  if (length(items) == 1L) items else paste0("c(", paste(items, collapse = ", "), ")")
}

# The type of a vector as users say it ("numeric" for doubles).
r_type <- function(x) if (is.double(x)) "numeric" else typeof(x)

article <- function(word) if (grepl("^[aeiou]", word)) "an" else "a"

plural <- function(n) if (n == 1L) "" else "s"

arg_error <- function(arg, what, x) {
  rmsprop_abort(sprintf("`%s` must be %s; got %s.", arg, what, describe_value(x)),
                class = "rmsprop_argument_error")
}

# The message of a Python exception, without reticulate's traceback hint.
python_message <- function(e) {
  text <- tryCatch(reticulate::py_str(e), error = function(...) NULL)
  if (!is.character(text) || length(text) != 1L || !nzchar(text)) {
    text <- conditionMessage(e)
    text <- sub("\nRun `reticulate::py_last_error\\(\\)` for details\\.?\\s*$", "", text)
    text <- sub("^[A-Za-z_.]*(Error|Exception|Warning): ", "", text)
  }
  text
}

# A Python exception raised by the engine as an R error. The engine raises
# TypeError and ValueError for bad arguments (checks.py); they are
# `rmsprop_argument_error`s. Every engine error is also an
# `rmsprop_engine_error`.
# A damaged or foreign checkpoint (the engine's CheckpointError) is an
# `rmsprop_checkpoint_error` instead.
# `values`: the R values of the arguments (a named list, or the environment
# of the calling wrapper, whose arguments have the engine's names), so that
# an argument error shows the value as the user wrote it (see
# r_argument_message()).
engine_abort <- function(e, values = NULL) {
  engine_classes()
  checkpoint <- isTRUE(tryCatch(.rmsprop$isinstance(e, engine()$CheckpointError),
                                error = function(...) FALSE))
  bad_argument <- !checkpoint &&
    inherits(e, c("python.builtin.TypeError", "python.builtin.ValueError"))
  message <- if (bad_argument) r_argument_message(e, values) else NULL
  rmsprop_abort(if (is.null(message)) r_wording(python_message(e)) else message,
                class = c(if (checkpoint) "rmsprop_checkpoint_error",
                          if (bad_argument) "rmsprop_argument_error", "rmsprop_engine_error"))
}

# The engine's argument error ("`x` must be <requirement>; got <value>.",
# made by checks.argument_error(), which keeps the parts on the exception)
# written for R users: the value as R writes it (the R value given, else the
# Python value converted to R: `NaN` not `nan`, `NULL` not `None`) and
# Python's True/False/None in the requirement as R's. An element's error
# (the part `index`, 0-based, as in `variables[0]`) is R's `variables[[1]]`,
# with the element's value as the engine got it. Python's advice (the part
# `hint`, in Python's terms) is left out. NULL when the exception has no such
# parts.
r_argument_message <- function(e, values) {
  part <- function(name) {
    tryCatch(reticulate::py_to_r(reticulate::py_get_attr(e, name, silent = TRUE)),
             error = function(...) NULL)
  }
  argument <- part("argument")
  requirement <- part("requirement")
  if (!is.character(argument) || !is.character(requirement)) return(NULL)
  detail <- part("detail")
  index <- part("index")
  found <- FALSE
  if (length(index)) {
    # (R's value is the whole list; the element is the engine's)
    argument <- paste0(argument, paste0("[[", unlist(index) + 1L, "]]", collapse = ""))
    values <- NULL
  }
  if (is.environment(values)) {
    found <- exists(argument, envir = values, inherits = FALSE)
    if (found) value <- get(argument, envir = values, inherits = FALSE)
  } else if (is.list(values)) {
    found <- argument %in% names(values)
    if (found) value <- values[[argument]]
  }
  if (!found) {
    value <- tryCatch(reticulate::py_to_r(reticulate::py_get_attr(e, "value")),
                      error = function(...) NULL)
    # (a Python object R has no value for: Python's own description)
    value <- as_rmsprop_object(value)
    if (inherits(value, "python.builtin.object") && !inherits(value, "rmsprop_variable")) {
      return(NULL)
    }
  }
  sprintf("`%s` must be %s; got %s%s.", argument, r_wording(requirement),
          describe_value(value), if (is.character(detail)) detail else "")
}

# Python's words in the engine's messages, as R says them.
r_words <- c("\\bTrue\\b" = "TRUE", "\\bFalse\\b" = "FALSE", "\\bNone\\b" = "NULL",
             "\\ba LearningRateSchedule\\b" = "a schedule",
             "\\ba callable taking no arguments\\b" = "a function",
             "\\ba callable returning\\b" = "a function returning",
             "\\brmsprop\\.RMSprop\\b" = "optimizer_rmsprop()",
             # (R arrays reach the engine as read-only arrays: R passes variables)
             "\\ban rmsprop\\.Variable or a writable NumPy float array\\b" =
               "an engine variable from rmsprop_variable()",
             "\\bcheck_names=FALSE\\b" = "check_names = FALSE",
             "with `names`" = "as list names")

# ... and Python's shapes and lists of names: "shape (3,)" as "length 3",
# "shape (2, 3)" as "dim c(2, 3)", "['a', 'b']" as c("a", "b").
r_wording <- function(text) {
  for (word in names(r_words)) text <- gsub(word, r_words[[word]], text)
  text <- gsub("\\bshape \\((\\d+),\\)", "length \\1", text)
  text <- gsub("\\bshape \\((\\d+(, \\d+)+)\\)", "dim c(\\1)", text)
  text <- gsub("\\bshape \\(\\)", "length 1 (a scalar)", text)
  lists <- gregexpr("\\['[^']*'(, '[^']*')*\\]", text, perl = TRUE)
  regmatches(text, lists) <- lapply(regmatches(text, lists), function(found) {
    paste0("c(", gsub("'", "\"", substr(found, 2L, nchar(found) - 1L), fixed = TRUE), ")")
  })
  text
}

# Evaluate `expr`, a call into the engine: a Python exception becomes an R
# error with the engine's message, a Python warning an R warning, and an
# engine object gets its R class (see classes.R). `values`: see
# engine_abort().
py_try <- function(expr, values = NULL) {
  module <- .rmsprop$warnings
  if (is.null(module)) {
    engine()
    module <- .rmsprop$warnings <- reticulate::import("warnings", convert = FALSE)
  }
  recorder <- module$catch_warnings(record = TRUE)
  log <- recorder$`__enter__`()
  module$simplefilter("always")
  result <- tryCatch(expr, python.builtin.BaseException = function(e) e,
                     finally = recorder$`__exit__`(NULL, NULL, NULL))
  for (record in reticulate::py_to_r(log)) {
    rmsprop_warn(r_wording(python_message(record$message)))
  }
  if (inherits(result, "python.builtin.BaseException")) engine_abort(result, values)
  as_rmsprop_object(result)
}

# -- conversions -----------------------------------------------------------------

# NA becomes NaN (see above); everything else is reticulate's.
as_py_value <- function(x) {
  if (is.atomic(x) && !is.null(x) && !is.factor(x) && anyNA(x)) {
    if (is.character(x)) {
      x <- lapply(x, function(v) if (is.na(v)) NaN else v)
      if (length(x) == 1L) x <- x[[1L]]
    } else {
      x <- as.double(x)
    }
  }
  x
}

# A whole number -> a Python int (through an R integer when it fits);
# anything else as is, for the engine to check.
as_py_int <- function(x) {
  if (is.double(x) && length(x) == 1L && is.null(dim(x)) && !is.na(x) && is.finite(x) &&
      x == trunc(x)) {
    if (abs(x) <= .Machine$integer.max) return(as.integer(x))
    return(reticulate::import_builtins(convert = FALSE)$int(x))
  }
  as_py_value(x)
}

# A vector -> an R list (a Python list, also at length 1), whole numbers as
# ints when `whole`.
as_py_list <- function(x, whole = FALSE) {
  if (!is.atomic(x) || is.null(x) || !is.null(dim(x)) && length(dim(x)) > 1L) {
    return(as_py_value(x))
  }
  x <- as.vector(x)
  if (whole) return(lapply(x, as_py_int))
  as.list(as_py_value(x))
}

# Arguments of `...`: named (they become Python keywords), NA converted.
named_dots <- function(...) {
  dots <- list(...)
  if (length(dots) && (is.null(names(dots)) || any(!nzchar(names(dots))))) {
    rmsprop_abort("Arguments in `...` must be named.", class = "rmsprop_argument_error")
  }
  lapply(dots, as_py_value)
}

check_dots_empty <- function(...) {
  if (...length()) {
    dots <- names(list(...))
    shown <- if (is.null(dots)) "" else paste(dots[nzchar(dots)], collapse = ", ")
    rmsprop_abort(
      sprintf("`...` must be empty; got %d unexpected argument%s%s.", ...length(),
              plural(...length()), if (nzchar(shown)) paste0(": ", shown) else ""),
      class = "rmsprop_argument_error")
  }
}

check_choice <- function(x, arg, choices) {
  if (!is.character(x) || length(x) != 1L || is.na(x) || !(x %in% choices)) {
    arg_error(arg, paste0("one of ", paste0('"', choices, '"', collapse = ", ")), x)
  }
  x
}

check_path <- function(x, arg = "path") {
  if (!is.character(x) || length(x) != 1L || is.na(x) || !nzchar(x)) {
    arg_error(arg, "a file path (a single string)", x)
  }
  path.expand(x)
}

# -- arguments only R sees --------------------------------------------------------
# (rmsprop_minimize()'s `control`: no engine function checks them)

is_number <- function(x) {
  is.numeric(x) && length(x) == 1L && !is.na(x) && is.null(dim(x))
}

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
