# The R classes of the engine's objects.
#
# reticulate names the class of a Python object after its module path, which
# changes whenever a Python file is renamed; the package dispatches on stable
# R classes instead, set here on every engine object it hands to R:
#   rmsprop_optimizer             an RMSprop optimizer
#   rmsprop_loss_scale_optimizer  a loss-scale optimizer around one
#   rmsprop_schedule              a learning rate schedule
#   rmsprop_variable              an engine variable
# each followed by "rmsprop_object" and reticulate's own classes.

r_class_names <- c("rmsprop_loss_scale_optimizer", "rmsprop_optimizer", "rmsprop_schedule",
                   "rmsprop_variable")

optimizer_classes <- c("rmsprop_optimizer", "rmsprop_loss_scale_optimizer")

# The engine classes behind the R classes, in the order of `r_class_names`.
engine_classes <- function() {
  classes <- .rmsprop$classes
  if (is.null(classes)) {
    module <- engine()
    classes <- list(module$LossScaleOptimizer, module$RMSprop,
                    module$schedules$LearningRateSchedule, module$Variable)
    .rmsprop$isinstance <- reticulate::import_builtins()$isinstance
    .rmsprop$classes <- classes
  }
  classes
}

# `x` with its R class when it is an engine object; a plain R list with its
# elements classed; anything else unchanged.
as_rmsprop_object <- function(x) {
  if (!inherits(x, "python.builtin.object")) {
    if (is.list(x) && !is.object(x) && length(x)) x[] <- lapply(x, as_rmsprop_object)
    return(x)
  }
  if (inherits(x, "rmsprop_object") || reticulate::py_is_null_xptr(x)) return(x)
  # The answer depends on the Python type only: found once per type (the
  # type's name is a cache key here, never a class to dispatch on).
  key <- class(x)[[1L]]
  r_class <- .rmsprop$r_class_of[[key]]
  if (is.null(r_class)) {
    classes <- engine_classes()
    r_class <- ""
    for (i in seq_along(classes)) {
      if (isTRUE(.rmsprop$isinstance(x, classes[[i]]))) {
        r_class <- r_class_names[[i]]
        break
      }
    }
    if (is.null(.rmsprop$r_class_of)) .rmsprop$r_class_of <- list()
    .rmsprop$r_class_of[[key]] <- r_class
  }
  if (identical(r_class, "rmsprop_schedule")) x <- vector_valued(x)
  if (nzchar(r_class)) class(x) <- c(r_class, "rmsprop_object", class(x))
  x
}

# A schedule called from R returns a plain R vector (one rate per step) where
# reticulate would give a 1-d array: the same Python object (same
# attributes), called through an R function that drops the dim.
vector_valued <- function(schedule) {
  call <- function(step) as.vector(py_try(schedule(as_py_value(step)), environment()))
  attributes(call) <- attributes(schedule)
  call
}

check_optimizer <- function(x, arg = "optimizer") {
  if (inherits(x, "python.builtin.object") && !reticulate::py_is_null_xptr(x)) {
    x <- as_rmsprop_object(x)
  }
  if (!inherits(x, optimizer_classes)) {
    arg_error(arg, "an rmsprop optimizer (from optimizer_rmsprop() or optimizer_loss_scale())", x)
  }
  if (reticulate::py_is_null_xptr(x)) {
    rmsprop_abort(sprintf(paste("`%s` is a Python object from an earlier R session; it is",
                                "no longer valid. Save optimizers with save_optimizer()."), arg),
                  class = "rmsprop_argument_error")
  }
  x
}

is_method <- function(x) {
  inherits(x, c("python.builtin.method", "python.builtin.builtin_function_or_method"))
}

#' Fields and methods of engine objects
#'
#' Optimizers, schedules and variables are the engine's Python objects;
#' their Keras fields and methods work from R with `$`. Results come back as
#' R values: numbers, lists, and engine objects with their R class
#' (`rmsprop_optimizer`, `rmsprop_loss_scale_optimizer`, `rmsprop_schedule`,
#' `rmsprop_variable`). A state variable read as a field (such as a
#' loss-scale optimizer's `dynamic_scale`) reads as its value. Errors and
#' warnings of the engine are R conditions (`rmsprop_argument_error` for bad
#' arguments, `rmsprop_engine_error` for every engine error, `rmsprop_warning`).
#'
#' Setting a field with `$<-` is checked by the engine; a name that is not a
#' field of the object is an error (a typo would otherwise create a new
#' attribute silently).
#'
#' An optimizer's `$get_config()` gives a numeric learning rate as you gave
#' it (`0.1`), where Python's `get_config()`, like Keras', gives the value
#' the optimizer's float32 variable holds (`0.10000000149011612`); so
#' `do.call(optimizer_rmsprop, opt$get_config())` rebuilds an optimizer that
#' computes exactly as `opt`, in float64 (the default of [optimizer_apply()])
#' too. keras3 has no `optimizer_from_config()`; its generic
#' `from_config()` needs keras3 itself.
#'
#' @param x An optimizer, schedule or variable.
#' @param name The field or method.
#' @param value The new value (converted as the arguments of
#'   [optimizer_rmsprop()] are: whole numbers as integers, an R function or
#'   schedule as learning rate).
#' @return `$`: the field's value, or an R function calling the method.
#'   `$<-`: `x`, invisibly.
#' @name rmsprop_fields
#' @examplesIf rmsprop::engine_available()
#' opt <- optimizer_loss_scale(optimizer_rmsprop(), initial_scale = 8)
#' opt$dynamic_scale
#' opt$learning_rate <- 0.01
#' opt$learning_rate
#' try(opt$learnig_rate <- 0.1)
NULL

#' @rdname rmsprop_fields
#' @export
`$.rmsprop_object` <- function(x, name) {
  value <- tryCatch(reticulate::py_get_attr(x, name),
                    python.builtin.BaseException = engine_abort)
  if (is_method(value)) {
    if (identical(name, "get_config") && inherits(x, optimizer_classes)) {
      return(function() {
        config_as_given(x, py_try(reticulate::py_to_r(reticulate::py_call(value))))
      })
    }
    # (NA converted as for the package's functions: see as_py_value())
    return(function(...) {
      args <- lapply(list(...), as_py_value)
      py_try(reticulate::py_to_r(do.call(reticulate::py_call, c(list(value), args))), list(...))
    })
  }
  if (!identical(name, "variables")) {
    value <- as_rmsprop_object(value)
    if (inherits(value, "rmsprop_variable")) {
      value <- variable_value(value)
      # The engine's counter is an int64 Variable (as Keras'); R reads it as
      # an integer, as before it was one (a double beyond integer range).
      if (identical(name, "iterations") && abs(value) <= .Machine$integer.max) {
        value <- as.integer(value)
      }
      return(value)
    }
  }
  as_rmsprop_object(reticulate::py_to_r(value))
}

#' @rdname rmsprop_fields
#' @export
`$<-.rmsprop_object` <- function(x, name, value) { # nolint: object_name.
  if (startsWith(name, "_") || !reticulate::py_has_attr(x, name) ||
      is_method(reticulate::py_get_attr(x, name))) {
    fields <- public_fields(x)
    rmsprop_abort(sprintf("`%s` is not a field of this %s; its fields are: %s.", name,
                          sub("^rmsprop_", "", class(x)[[1L]]), paste(fields, collapse = ", ")),
                  class = "rmsprop_argument_error")
  }
  given <- stats::setNames(list(value), name)
  value <- if (identical(name, "learning_rate")) as_py_learning_rate(value) else as_py_int(value)
  py_try(reticulate::py_set_attr(x, name, value), given)
  invisible(x)
}

# An optimizer's config with a numeric learning rate as the user gave it (an
# R double), not as the optimizer's float32 variable holds it (Python's
# get_config(), like Keras' BaseOptimizer.get_config(), gives
# float(self._learning_rate.numpy()): 0.1 reads 0.10000000149011612), so
# that `do.call(optimizer_rmsprop, opt$get_config())` computes as `opt` in
# float64 too. A loss-scale optimizer's inner config likewise.
config_as_given <- function(optimizer, config) {
  inner <- reticulate::py_get_attr(optimizer, "inner_optimizer", silent = TRUE)
  if (!is.null(inner) && is.list(config$inner_optimizer)) {
    config$inner_optimizer$config <- config_as_given(inner, config$inner_optimizer$config)
    return(config)
  }
  # (the engine's LearningRateVariable remembers the number it was given)
  rate <- reticulate::py_get_attr(optimizer, "_learning_rate", silent = TRUE)
  given <- if (!is.null(rate)) reticulate::py_get_attr(rate, "_number", silent = TRUE)
  if (is.numeric(config$learning_rate) && !is.null(given)) {
    given <- reticulate::py_to_r(given)
    if (is.numeric(given) && length(given) == 1L) config$learning_rate <- given
  }
  config
}

public_fields <- function(x) {
  names <- reticulate::py_list_attributes(x)
  names <- names[!startsWith(names, "_")]
  keep <- vapply(names, function(n) {
    !is_method(tryCatch(reticulate::py_get_attr(x, n), error = function(e) NULL))
  }, logical(1))
  sort(names[keep])
}

# A variable's value as an R number (shape ()) or array.
variable_value <- function(x) {
  value <- reticulate::py_to_r(py_try(reticulate::py_call(reticulate::py_get_attr(x, "numpy"))))
  ndim <- reticulate::py_to_r(reticulate::py_get_attr(x, "ndim"))
  if (ndim == 0L) return(as.vector(value))
  if (is.null(dim(value))) value <- array(value, dim = length(value))
  value
}
