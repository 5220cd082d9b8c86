#' An engine variable
#'
#' A named, mutable array held by the engine, as a Keras variable: pass
#' variables to the optimizer's `$apply()`, `$apply_gradients()` or `$build()`
#' methods, which update them in place. `as.array()`, `as.numeric()`,
#' `dim()`, `length()`, `summary()` and `str()` treat it as the R array it
#' holds. (To train plain R values without variables, use
#' [optimizer_apply()].)
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
#' @return `rmsprop_variable()`: an engine variable (R class
#'   `rmsprop_variable`). `as.array()`: an R array of the variable's shape
#'   (a plain number for a scalar variable). `as.numeric()`: a plain double
#'   vector. `dim()`: the shape (`NULL` for a scalar variable). `length()`:
#'   the number of elements.
#' @export
#' @examplesIf rmsprop::engine_available()
#' w <- rmsprop_variable(matrix(1:6, 2, 3), dtype = "float64", name = "w")
#' w
#' dim(w)
#' opt <- optimizer_rmsprop(learning_rate = 0.1)
#' opt$apply(list(matrix(1, 2, 3)), list(w))
#' as.array(w)
#' summary(w)
rmsprop_variable <- function(value, dtype = NULL, name = NULL) {
  # a vector of length 1 becomes a scalar variable, like the R numbers that
  # reticulate sends as gradients to `$apply()`; longer vectors are 1-d
  # (with a dim, reticulate sends an array rather than a list).
  if (is.atomic(value) && is.null(dim(value)) && length(value) != 1L && !is.factor(value)) {
    dim(value) <- length(value)
  }
  py_try(engine()$Variable(as_py_value(value), dtype = as_py_value(dtype),
                           name = as_py_value(name)), environment())
}

#' @rdname rmsprop_variable
#' @param x An engine variable.
#' @param ... Unused.
#' @export
as.array.rmsprop_variable <- function(x, ...) {
  variable_value(x)
}

#' @rdname rmsprop_variable
#' @export
as.double.rmsprop_variable <- function(x, ...) {
  as.double(variable_value(x))
}

#' @rdname rmsprop_variable
#' @export
dim.rmsprop_variable <- function(x) {
  shape <- as.integer(unlist(reticulate::py_to_r(reticulate::py_get_attr(x, "shape"))))
  if (length(shape)) shape else NULL
}

#' @rdname rmsprop_variable
#' @export
length.rmsprop_variable <- function(x) {
  as.integer(reticulate::py_to_r(reticulate::py_get_attr(x, "size")))
}

#' @rdname rmsprop_variable
#' @param object An engine variable.
#' @export
summary.rmsprop_variable <- function(object, ...) {
  summary(as.vector(variable_value(object)), ...)
}

variable_header <- function(x) {
  d <- dim(x)
  sprintf("<rmsprop_variable '%s'> %s, %s", x$name, x$dtype,
          if (is.null(d)) "scalar" else paste0("dim ", paste(d, collapse = " x ")))
}

#' @rdname rmsprop_variable
#' @export
format.rmsprop_variable <- function(x, ...) {
  if (reticulate::py_is_null_xptr(x)) return(format_dead(x))
  variable_header(x)
}

#' @rdname rmsprop_variable
#' @export
print.rmsprop_variable <- function(x, ...) {
  writeLines(format(x))
  if (!reticulate::py_is_null_xptr(x)) print(variable_value(x), ...)
  invisible(x)
}

#' @rdname rmsprop_variable
#' @export
str.rmsprop_variable <- function(object, ...) {
  cat(variable_header(object), "\n ", sep = "")
  utils::str(variable_value(object), ...)
}
