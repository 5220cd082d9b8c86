#' Apply one optimizer step to R values
#'
#' The R way to train: pass the current parameters and their gradients, get
#' the updated parameters back. The optimizer keeps its state (slots such as
#' the RMSprop velocity) between calls, matched to the parameters by
#' position, so call it with parameters of the same structure every time
#' (a changed structure is an error: use a new optimizer for a new model).
#'
#' `params` and `grads` are a numeric vector or array, or a (named) list of
#' them, with the same structure: the same length, names and dims. A vector
#' without `dim` is trained as a 1-d array, an array as an array of its dims.
#' A `NULL` gradient in a list means "no gradient for this parameter this
#' step" (the parameter is left unchanged, as in Keras).
#'
#' The first call builds the optimizer on new engine variables of `dtype`,
#' named after the list names (or `"param_1"`, `"param_2"`, ... for unnamed
#' parameters, the names Python's `apply_to_values()` gives them too, so that
#' a checkpoint of an unnamed run resumes in either language), which is what
#' weight decay exclusions by name (`optimizer$exclude_from_weight_decay(var_names
#' = ...)`) and checkpoints see. The names are fixed then, as the rest of
#' the structure is: a later call whose list names differ (renamed,
#' reordered, added or dropped) is an error, which keeps a parameter from
#' taking over the state (velocity, EMA) of another.
#' Updates are computed in `dtype`:
#' * `"float64"` (the default) computes in R's precision, as Keras does under
#'   the float policy `"float64"`: the learning rate, every hyperparameter
#'   and every schedule value are used as doubles, so the result is the one
#'   RMSprop written in plain R in Keras' order of operations gives,
#'   `identical()` to the last bit.
#' * `"float32"` reproduces Keras' float32 trajectories (its default policy).
#' * `"float16"` keeps the variables and computes in half precision (as
#'   Keras' float16 variables under the float32 policy store them); useful
#'   only to study rounding.
#'
#' NA, NaN or Inf in `params` or `grads` is an error naming the element and
#' position (`grads$w contains NA at [3]`), before anything changes; under
#' [optimizer_loss_scale()] a non-finite gradient skips the step instead (as
#' in Keras). A non-finite value produced by the update itself (e.g.
#' `epsilon = 0` with a zero gradient) is an R warning naming the parameter.
#' With `dtype = "float32"` or `"float16"`, a finite value too large for
#' that type (`1e39` in float32) is an error too, naming the element and
#' position, where Keras would round it to `Inf` silently; under
#' [optimizer_loss_scale()] such a gradient skips the step (it overflowed).
#' An optimizer loaded with [load_optimizer()] takes up its saved state at
#' the first call.
#'
#' The optimizer's R object keeps a reference to the last result: passed
#' back unchanged (`identical()`), it is not converted and sent to the
#' engine again. Long results are vectors the engine wrote during the call;
#' like every result, they never change afterwards.
#'
#' @param optimizer An optimizer from [optimizer_rmsprop()] or
#'   [optimizer_loss_scale()] (or [load_optimizer()]), not built on engine
#'   variables.
#' @param grads The gradients: the same structure as `params`.
#' @param params The current parameter values: a numeric vector or array, or
#'   a (named) list of them.
#' @param ... Must be empty.
#' @param dtype `"float64"` (default), `"float32"` or `"float16"`: the
#'   precision the optimizer computes and keeps its variables in. Fixed at
#'   the first call.
#' @return The updated parameters, with the structure, names, dims and
#'   attributes of `params`, as doubles.
#' @export
#' @examplesIf rmsprop::engine_available()
#' # Least squares with noise: y = X %*% w + b + e, compared with lm()
#' set.seed(1)
#' X <- matrix(rnorm(200), 100, 2)
#' y <- drop(X %*% c(2, -1) + 0.5 + rnorm(100, sd = 0.1))
#' params <- list(w = c(0, 0), b = 0)
#' # a decaying rate: RMSprop's steps shrink with it, so the fit settles
#' opt <- optimizer_rmsprop(learning_rate = learning_rate_schedule_exponential_decay(
#'   0.05, decay_steps = 100, decay_rate = 0.5))
#' for (i in 1:1000) {
#'   r <- drop(X %*% params$w + params$b - y)
#'   grads <- list(w = drop(2 * crossprod(X, r) / 100), b = 2 * mean(r))
#'   params <- optimizer_apply(opt, grads, params)
#'   if (i %% 250 == 0) cat("step", i, "loss", mean(r^2), "\n")
#' }
#' rbind(rmsprop = c(params$b, params$w), lm = coef(lm(y ~ X)))
optimizer_apply <- function(optimizer, grads, params, ..., dtype = "float64") {
  if (...length()) check_dots_empty(...)
  # (inherits() only: this is the hot path)
  if (!inherits(optimizer, optimizer_classes)) optimizer <- check_optimizer(optimizer, "optimizer")
  if (!identical(dtype, "float64")) {
    dtype <- check_choice(dtype, "dtype", c("float64", "float32", "float16"))
  }
  # Under dynamic loss scaling a non-finite gradient is the signal to skip
  # the step (Keras), not an error.
  check_grads <- !inherits(optimizer, "rmsprop_loss_scale_optimizer")
  # The usual loop passes back what the last call returned: then the engine
  # still holds those values (a read-only record of them) and they are not
  # converted and sent again. identical() is immediate for the same object,
  # and compares every bit (and attribute) otherwise.
  last <- get0(last_step_key, envir = optimizer, inherits = FALSE)
  again <- !is.null(last) && identical(params, last$params, num.eq = FALSE)
  is_list <- is.list(params) && !inherits(params, "data.frame")
  if (is_list) {
    n <- length(params)
    if (!n) arg_error("params", "a numeric vector or array, or a non-empty list of them", params)
    if (!is.list(grads) || inherits(grads, "data.frame")) {
      arg_error("grads", sprintf("a list like `params` (of %d element%s)", n, plural(n)), grads)
    }
    if (length(grads) != n) {
      rmsprop_abort(sprintf(paste0("`grads` must have the structure of `params`: ",
                                   "`params` has %d element%s, `grads` has %d."),
                            n, plural(n), length(grads)),
                    class = "rmsprop_argument_error")
    }
    grad_names <- names(grads)
    if (!is.null(grad_names) && !identical(grad_names, names(params))) {
      rmsprop_abort(sprintf("`grads` must have the names of `params` (%s); got %s.",
                            paste(names(params), collapse = ", "),
                            paste(grad_names, collapse = ", ")),
                    class = "rmsprop_argument_error")
    }
    labels <- params
    param_list <- params
    grad_list <- grads
  } else {
    if (!is.numeric(params) || is.factor(params)) {
      arg_error("params", "a numeric vector or array, or a list of them", params)
    }
    if (!is.numeric(grads) || is.factor(grads)) {
      arg_error("grads", "a numeric vector or array like `params`", grads)
    }
    if (!same_shape(params, grads)) shape_error(params, grads, "`grads`")
    n <- 1L
    labels <- NULL
    param_list <- list(params)
    grad_list <- list(grads)
  }
  # The engine reads the names only when it builds (values sent): NULL
  # spares computing them at every step.
  keys <- if (again) NULL else param_keys(params, is_list)
  values <- if (again) NULL else vector("list", n)
  gradients <- vector("list", n)
  # The result vectors, then the one shared by the short results (or NULL).
  outs <- vector("list", n + 1L)
  short <- 0L
  any_null <- FALSE
  for (i in seq_len(n)) {
    p <- param_list[[i]]
    g <- grad_list[[i]]
    # A long plain double vector (value or gradient) is copied here, to give
    # it a dim; the engine may also write the result into that copy (see
    # below). NULL when there is none.
    copy <- NULL
    long <- length(p) >= result_buffer_min
    if (!again) {
      if (is_list && (!is.numeric(p) || is.factor(p))) element_error("params", params, i, p)
      # NaN and Inf in doubles are found by the engine (one fast pass);
      # an integer NA reaches NumPy as a plain integer, so R looks for it.
      if (is.integer(p) && anyNA(p)) non_finite_error("params", labels, i, p)
      # With a dim, reticulate hands NumPy a view of R's memory (a plain
      # vector would become a Python list).
      if (is.null(dim(p))) {
        fresh <- long && is.double(p)
        if (fresh) p <- rep_len(p, length(p))
        dim(p) <- length(p)
        if (fresh) copy <- p
      }
      values[[i]] <- p
    }
    if (is.null(g)) {
      any_null <- TRUE
    } else {
      if (is_list) {
        if (!is.numeric(g) || is.factor(g)) element_error("grads", params, i, g, null_ok = TRUE)
        if (!same_shape(p, g)) shape_error(p, g, element_label("grads", params, i))
      }
      if (check_grads && is.integer(g) && anyNA(g)) non_finite_error("grads", labels, i, g)
      if (is.null(dim(g))) {
        fresh <- long && is.null(copy) && is.double(g)
        if (fresh) g <- rep_len(g, length(g))
        dim(g) <- length(g)
        if (fresh) copy <- g
      }
      gradients[[i]] <- g
    }
    if (!long) {
      short <- short + length(p)
    } else {
      # The result needs a fresh R vector; a copy made above is one. A plain
      # vector's copy is unavoidable: reticulate hands NumPy a view only of a
      # vector with a dim, and the caller's vector is shared, so `dim<-` on
      # it would duplicate it or wrap it in an ALTREP wrapper of the caller's
      # memory. The copy is made explicitly by rep_len(), which always
      # allocates a plain vector (also for ALTREP input): the memory NumPy
      # sees then belongs to `copy` alone whatever reticulate asks of a
      # wrapper, and nothing outside this call refers to it. The engine
      # writes the result only after the step, once it no longer reads the
      # gradient or value it holds (see apply_for_r). This saves a
      # zero-filled allocation per parameter, and so half of R's garbage
      # collections of a step on long plain vectors.
      outs[[i]] <- if (!is.null(copy)) copy else
        result_buffer(if (is.null(dim(p))) length(p) else dim(p))
    }
  }
  if (short) outs[[n + 1L]] <- result_buffer(short)

  engine_step <- .rmsprop$apply_for_r
  if (is.null(engine_step)) {
    engine()
    engine_step <- .rmsprop$apply_for_r
  }
  if (!identical(getOption("rmsprop.num_threads"), .rmsprop$num_threads)) sync_num_threads()
  step <- next_step_number()
  # This runs at every training step, so the call is kept lean: positional
  # arguments through py_call() (reticulate converts keyword arguments more
  # slowly), and the engine writes the results into `outs` and `pack` and
  # returns None, or a Python exception instead of raising it, which is
  # cheaper to check than wrapping each call in tryCatch().
  last_step <- if (again) last$step else 0L
  # (The call is written out twice rather than wrapped in a closure, which
  # would cost every step its creation.)
  result <- if (any_null) {
    without_python_warnings(function() {
      reticulate::py_call(engine_step, optimizer, gradients, values, dtype, keys, outs,
                          last_step, step, check_grads)
    })
  } else {
    reticulate::py_call(engine_step, optimizer, gradients, values, dtype, keys, outs,
                        last_step, step, check_grads)
  }
  bad <- NULL
  if (!inherits(result, "python.builtin.NoneType")) {
    if (inherits(result, "python.builtin.BaseException")) engine_abort(result)
    result <- reticulate::py_to_r(result)
    what <- result[[1L]]
    if (identical(what, "stale")) {
      # another step came in between: send the values
      assign(last_step_key, NULL, envir = optimizer)
      return(optimizer_apply(optimizer, grads, params, dtype = dtype))
    }
    if (identical(what, "results")) {
      bad <- result[[2L]]
    } else if (identical(what, "overflow")) {
      arg <- result[[2L]]
      i <- result[[3L]]
      overflow_error(arg, labels, i, if (arg == "params") param_list[[i]] else grad_list[[i]],
                     result[[4L]], result[[5L]], dtype, result[[6L]])
    } else {
      i <- result[[2L]]
      non_finite_error(what, labels, i, if (what == "params") param_list[[i]] else grad_list[[i]])
    }
  }
  # (once the step is done: not for a step refused or sent again)
  if (any_null) warn_missing_gradients(param_keys(params, is_list), gradients)
  out <- vector("list", n)
  pack <- outs[[n + 1L]]
  offset <- 0L
  for (i in seq_len(n)) {
    p <- param_list[[i]]
    value <- outs[[i]]
    if (is.null(value)) {
      value <- if (!short) numeric(0) else if (length(p) == short) pack else
        pack[offset + seq_along(p)]
      offset <- offset + length(p)
    }
    # These vectors are marked shared by reticulate: R gives `value` its
    # attributes on a copy (short) or on an ALTREP wrapper of the same memory
    # (long), never by changing a vector in place. (The functional form: in
    # byte code, `attributes(value) <- ` would copy a long vector too.)
    value <- `attributes<-`(value, attributes(p))
    out[[i]] <- value
  }
  if (is_list) attributes(out) <- attributes(params) else out <- out[[1L]]
  for (i in bad) warn_non_finite_result(out, is_list, param_keys(params, is_list), i)
  assign(last_step_key, list(step = step, params = out), envir = optimizer)
  out
}

# The engine's names of the parameters: the list names, "param_<i>" for
# unnamed ones (and for a single parameter).
param_keys <- function(params, is_list) {
  if (!is_list) return("param_1")
  keys <- names(params)
  if (is.null(keys)) return(paste0("param_", seq_along(params)))
  blank <- !nzchar(keys)
  if (any(blank)) keys[blank] <- paste0("param_", which(blank))
  keys
}

# A new number for each optimizer_apply() call of the session.
next_step_number <- function() {
  step <- .rmsprop$step
  step <- if (is.null(step) || step >= .Machine$integer.max) 1L else step + 1L
  .rmsprop$step <- step
  step
}

# Where optimizer_apply() keeps, in the R object of the optimizer, the
# number of its last step and the values it returned.
last_step_key <- ".rmsprop_last_step"

# Results from this length on each get an R vector of their own, which the
# engine writes; shorter ones share one (the pack), cut apart in R (R copies
# a short vector anyway when it changes its attributes, where it wraps a
# long one without copying).
result_buffer_min <- 64L

# A fresh double vector of dim `dims`, for the engine to write results into
# during the call.
# Nothing else refers to it until optimizer_apply() returns it; afterwards
# reticulate's reference marks it shared, so R never changes it in place.
result_buffer <- function(dims) {
  out <- numeric(prod(dims))
  dim(out) <- dims
  out
}

# `params$w` (or `params[[2]]`, or `params` for a single parameter).
element_label <- function(arg, params, i) {
  if (is.null(params)) return(sprintf("`%s`", arg))
  key <- names(params)[i]
  if (is.null(key) || is.na(key) || !nzchar(key)) sprintf("`%s[[%d]]`", arg, i)
  else if (make.names(key) == key) sprintf("`%s$%s`", arg, key)
  else sprintf("`%s[[\"%s\"]]`", arg, key)
}

element_error <- function(arg, params, i, x, null_ok = FALSE) {
  rmsprop_abort(sprintf("%s must be a numeric vector or array%s; got %s.",
                        element_label(arg, params, i), if (null_ok) " (or NULL)" else "",
                        describe_value(x)),
                class = "rmsprop_argument_error")
}

# The position of the first non-finite element: [3] in a vector, [2, 1] in a matrix.
first_non_finite <- function(x) {
  index <- which(!is.finite(x))[1L]
  d <- dim(x)
  position <- if (length(d) > 1L) arrayInd(index, d) else index
  list(what = if (is.nan(x[index])) "NaN" else if (is.na(x[index])) "NA" else
         if (x[index] > 0) "Inf" else "-Inf",
       at = paste0("[", paste(position, collapse = ", "), "]"),
       count = sum(!is.finite(x)))
}

non_finite_error <- function(arg, params, i, x) {
  found <- first_non_finite(x)
  more <- if (found$count > 1L) sprintf(" (and %d more non-finite values)", found$count - 1L)
  rmsprop_abort(sprintf(paste("%s contains %s at %s%s; %s must be finite",
                              "(the optimizer was not changed)."),
                        gsub("`", "", element_label(arg, params, i)), found$what, found$at,
                        if (is.null(more)) "" else more,
                        if (arg == "params") "parameters" else "gradients"),
                class = c("rmsprop_non_finite_error", "rmsprop_argument_error"))
}

# A finite value that `dtype` ("float32" or "float16") cannot hold: element
# `k` (column-major) of `x` is the first of `count`. The engine refuses it
# rather than rounding it to Inf (positional.refuse_overflow).
overflow_error <- function(arg, params, i, x, k, count, dtype, largest) {
  d <- dim(x)
  position <- if (length(d) > 1L) arrayInd(k, d) else k
  more <- if (count > 1L) {
    sprintf(" (and %d more such value%s)", count - 1L, plural(count - 1L))
  } else {
    ""
  }
  rmsprop_abort(sprintf(paste("%s contains %s at [%s]%s, which is Inf in %s (largest: %s);",
                              "%s must fit in `dtype` (the optimizer was not changed)."),
                        gsub("`", "", element_label(arg, params, i)), describe_value(x[[k]]),
                        paste(position, collapse = ", "), more,
                        dtype, format(largest, digits = 17L),
                        if (arg == "params") "parameters" else "gradients"),
                class = "rmsprop_argument_error")
}

# A non-finite value made by the update itself (e.g. `epsilon = 0` with a
# zero gradient) is an R warning naming the parameter.
warn_non_finite_result <- function(out, is_list, keys, i) {
  found <- first_non_finite(if (is_list) out[[i]] else out)
  rmsprop_warn(sprintf(paste0("The update made parameter '%s' non-finite (%s at %s%s); check ",
                              "the optimizer's arguments (e.g. `epsilon`) and the gradients."),
                       keys[[i]], found$what, found$at,
                       if (found$count > 1L) sprintf(", %d in all", found$count) else ""),
               class = "rmsprop_non_finite_warning")
}

# The engine's `result` (one array, or a list of arrays for a list of
# parameters) converted to R, with the structure, names, dims and attributes
# of `params`. The attributes are set on the freshly converted values, which
# nothing else references, so R changes them without copying the numbers.
like_params <- function(result, params) {
  out <- reticulate::py_to_r(result)
  if (!is.list(params) || is.data.frame(params)) {
    if (is.list(out)) out <- out[[1L]]
    attributes(out) <- attributes(params)
    return(out)
  }
  for (i in seq_along(out)) attributes(out[[i]]) <- attributes(params[[i]])
  attributes(out) <- attributes(params)
  out
}

same_shape <- function(p, g) {
  dp <- dim(p)
  dg <- dim(g)
  if (is.null(dp) && is.null(dg)) return(length(p) == length(g))
  if (is.null(dp) || is.null(dg)) {
    # a vector matches a 1-d array of its length
    d <- if (is.null(dp)) dg else dp
    return(length(d) == 1L && length(p) == length(g))
  }
  identical(as.integer(dp), as.integer(dg))
}

shape_label <- function(x) {
  if (length(dim(x)) <= 1L) {
    sprintf("length %d", length(x))
  } else {
    sprintf("dim c(%s)", paste(dim(x), collapse = ", "))
  }
}

shape_error <- function(p, g, label) {
  rmsprop_abort(sprintf(paste0("%s must have the shape of its parameter: ",
                               "the parameter has %s, the gradient %s."),
                        label, shape_label(p), shape_label(g)),
                class = "rmsprop_argument_error")
}

# Some gradients are NULL: the engine's Python warning (printed on stderr) is
# replaced by an R warning.
without_python_warnings <- function(call_engine) {
  warnings <- reticulate::import("warnings", convert = FALSE)
  with(warnings$catch_warnings(), {
    warnings$simplefilter("ignore")
    call_engine()
  })
}

warn_missing_gradients <- function(keys, gradients) {
  missing <- keys[vapply(gradients, is.null, logical(1))]
  warning(sprintf("Gradients do not exist for %s %s; %s left unchanged this step.",
                  if (length(missing) == 1L) "parameter" else "parameters",
                  paste0("'", missing, "'", collapse = ", "),
                  if (length(missing) == 1L) "it is" else "they are"),
          call. = FALSE)
}

# Whether `optimizer` trains values for optimizer_apply() (rather than
# variables given to `$build()` / `$apply()`).
trained_by_apply <- function(optimizer) {
  engine()
  trainer <- reticulate::py_call(.rmsprop$trainer_of, optimizer)
  !is.null(reticulate::py_to_r(trainer))
}

#' Final parameter values of an optimizer driven by `optimizer_apply()`
#'
#' With `use_ema = TRUE`, Keras ends training by overwriting the weights with
#' their exponential moving averages (`finalize_variable_values()`). The
#' parameters trained by [optimizer_apply()] are R values the optimizer does
#' not own, so `optimizer_finalize()` returns those averages instead, in the
#' structure of `params`. Without EMA it returns the optimizer's current
#' values (those of the last `optimizer_apply()` call). The optimizer is left
#' unchanged, so training can go on.
#'
#' @param optimizer An optimizer already used with [optimizer_apply()].
#' @param params Parameters of the structure used with `optimizer_apply()`
#'   (for example the last result): they give the names, dims and
#'   attributes of the result.
#' @return The finalized parameters, with the structure of `params`.
#' @export
#' @examplesIf rmsprop::engine_available()
#' opt <- optimizer_rmsprop(learning_rate = 0.1, use_ema = TRUE, ema_momentum = 0.9)
#' params <- list(w = c(1, 2), b = 0)
#' for (i in 1:20) {
#'   params <- optimizer_apply(opt, list(w = 2 * params$w, b = 2 * params$b), params)
#' }
#' optimizer_finalize(opt, params)
optimizer_finalize <- function(optimizer, params) {
  if (!inherits(optimizer, optimizer_classes)) optimizer <- check_optimizer(optimizer, "optimizer")
  if (!isTRUE(optimizer$built)) {
    rmsprop_abort(paste("`optimizer` has not been used with optimizer_apply() yet:",
                        "there is nothing to finalize."),
                  class = "rmsprop_argument_error")
  }
  if (!trained_by_apply(optimizer)) {
    rmsprop_abort(paste("`optimizer` was built on its own variables (with `$build()` or",
                        "`$apply()`), not used with optimizer_apply(): there are no values",
                        "to finalize. Call `optimizer$finalize_variable_values()`, which",
                        "updates its variables in place."),
                  class = "rmsprop_argument_error")
  }
  values <- reticulate::py_to_r(py_try(engine()$finalized_values(optimizer)))
  is_list <- is.list(params) && !is.data.frame(params)
  n <- if (is_list) length(params) else 1L
  if (length(values) != n) {
    rmsprop_abort(sprintf(paste("`params` must have the structure used with optimizer_apply()",
                                "(%d parameter%s); got %d."),
                          length(values), plural(length(values)), n),
                  class = "rmsprop_argument_error")
  }
  for (i in seq_len(n)) {
    p <- if (is_list) params[[i]] else params
    if (!is.numeric(p) || !same_shape(p, values[[i]])) {
      rmsprop_abort(sprintf("%s must have the shape used with optimizer_apply(): %s; got %s.",
                            element_label("params", if (is_list) params, i),
                            shape_label(values[[i]]), describe_value(p)),
                    class = "rmsprop_argument_error")
    }
  }
  like_params(values, params)
}
