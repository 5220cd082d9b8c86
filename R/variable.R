#' An engine variable
#'
#' A named, mutable array held by the engine, as a Keras variable: pass
#' variables to the optimizer's `$apply()`, `$apply_gradients()` or `$build()`
#' methods, which update them in place. `as.array()` and `as.numeric()` give
#' the current value back as R values. (To train plain R values without
#' variables, use [optimizer_apply()].)
#'
#' @param value A numeric vector or array. A vector without `dim` becomes a
#'   1-d variable, except at length 1: a scalar variable (shape `()`), which
#'   matches the R numbers passed as its gradient.
#' @param dtype `NULL` or one of `"float16"`, `"float32"`, `"float64"`,
#'   `"int32"`, `"int64"`. `NULL` takes the dtype of `value`, as Keras (>= 3.8)
#'   does for an array: a double vector or array gives `"float64"`, an integer
#'   one `"int32"`; a single number (length 1, sent to Python as a scalar)
#'   gives the engine's default float type (`"float32"`) for a double and
#'   `"int32"` for an integer. Whatever the storage, updates are computed in
#'   the optimizer's float type (`"float32"`), as in Keras.
#' @param name String or `NULL` (`"variable"`).
#' @return `rmsprop_variable()`: the engine's `rmsprop.Variable` (class
#'   `rmsprop.variable.Variable`). `as.array()`: an R array of the variable's
#'   shape. `as.numeric()`: a plain double vector.
#' @export
#' @examplesIf rmsprop::engine_available()
#' w <- rmsprop_variable(matrix(1:6, 2, 3), dtype = "float64", name = "w")
#' w$shape
#' opt <- optimizer_rmsprop(learning_rate = 0.1)
#' opt$apply(list(matrix(1, 2, 3)), list(w))
#' as.array(w)
#' as.numeric(w)
rmsprop_variable <- function(value, dtype = NULL, name = NULL) {
  if (!is.numeric(value)) arg_error("value", "a numeric vector or array", value)
  # a vector of length 1 becomes a scalar variable, like the R numbers that
  # reticulate sends as gradients to `$apply()`; longer vectors are 1-d.
  if (is.null(dim(value)) && length(value) != 1L) dim(value) <- length(value)
  if (!is.null(dtype)) dtype <- check_choice(dtype, "dtype", variable_dtypes)
  name <- check_string(name, "name", null_ok = TRUE)
  py_try(engine()$Variable(value, dtype = dtype, name = name))
}

#' @rdname rmsprop_variable
#' @param x An engine variable.
#' @param ... Unused.
#' @export
as.array.rmsprop.variable.Variable <- function(x, ...) {
  value <- reticulate::py_to_r(py_try(x$numpy()))
  if (is.null(dim(value))) value <- array(value, dim = length(value))
  value
}

#' @rdname rmsprop_variable
#' @export
as.double.rmsprop.variable.Variable <- function(x, ...) {
  as.double(as.array.rmsprop.variable.Variable(x))
}

variable_dtypes <- c("float16", "float32", "float64", "int32", "int64")
