#' Minimize a function with RMSprop, the way `optim()` does
#'
#' `rmsprop_minimize()` is the training loop an R user would otherwise write
#' by hand: starting from `par`, it calls `gr(par, ...)` and takes one
#' [optimizer_apply()] step with it, `control$maxit` times at most, watching
#' `fn(par, ...)` to stop once the loss no longer improves. Its arguments
#' and result follow [stats::optim()] where they mean the same.
#'
#' Each step is exactly one `optimizer_apply(optimizer, gr(par, ...), par)`
#' call (in float64, R's precision), so the result is `identical()` to that
#' hand-written loop run for the same number of steps. Everything the
#' optimizer can do works: learning-rate schedules, momentum, clipping,
#' weight decay, gradient accumulation, and:
#'
#' * **EMA** (`use_ema = TRUE`): as Keras ends training on the moving
#'   averages of the weights, the result's `par` is
#'   [optimizer_finalize()]`(optimizer, par)` and `value` is `fn` there; the
#'   `history` shows the loss of the trained (not averaged) values.
#' * **Loss scaling** ([optimizer_loss_scale()]): Keras differentiates the
#'   scaled loss, so the gradient of `gr` is multiplied by the optimizer's
#'   current loss scale before each step (the optimizer divides it back, and
#'   skips the step and lowers the scale when the scaled gradient overflows).
#'
#' The optimizer keeps its state: `res$optimizer` continues where the run
#' stopped, in a new `rmsprop_minimize(res$par, fn, gr, optimizer =
#' res$optimizer)` call or with [optimizer_apply()].
#'
#' @param par The starting parameters: a numeric vector or array, or a
#'   (named) list of them.
#' @param fn The function to minimize: `fn(par, ...)` returns one finite
#'   number.
#' @param gr Its gradient: `gr(par, ...)` returns numbers in the structure
#'   of `par` (the same length, names and dims).
#' @param ... Further arguments passed to `fn` and `gr`, as in `optim()`.
#' @param optimizer An optimizer from [optimizer_rmsprop()] or
#'   [optimizer_loss_scale()], new or already used with parameters of this
#'   structure. It is updated in place.
#' @param control A list of settings:
#'   * `maxit`: the largest number of steps (default 1000).
#'   * `reltol`: stop when one step reduces the loss by less than `reltol *
#'     (abs(value) + reltol)` (default `sqrt(.Machine$double.eps)`, as in
#'     `optim()`; `0` turns it off).
#'   * `abstol`: stop when the loss falls below `abstol` (default `-Inf`:
#'     off), for losses that reach zero.
#'   * `trace`: `0` (default) is silent; `1` or more shows progress: a
#'     progress bar in interactive sessions when `maxit` is 100 or more,
#'     otherwise one line every `REPORT` steps.
#'   * `REPORT`: how often `trace` prints a line (default `maxit / 10`).
#'   * `every`: record the loss in `history` every `every` steps (default
#'     1); the first and last steps are always recorded.
#'   * `callback`: `NULL`, or a function `callback(step, par, value)` called
#'     at every recorded step; returning `FALSE` stops the run.
#' @return An object of class `rmsprop_minimize`, a list with:
#'   * `par`: the parameters found, in the structure of `par`;
#'   * `value`: `fn` at `par`;
#'   * `counts`: the numbers of calls of `fn` and `gr` (named `function`
#'     and `gradient`, as in `optim()`);
#'   * `convergence`: `0` when `reltol` or `abstol` stopped the run, `1`
#'     when `maxit` was reached, `2` when the callback stopped it;
#'   * `message`: why the run stopped, in words;
#'   * `steps`: the number of optimizer steps taken;
#'   * `history`: a data frame with the `step`, the loss `value` after it,
#'     and the `learning_rate` it used (`NA` for step 0, the start);
#'   * `optimizer`: the optimizer, to continue training.
#'
#'   `print()`, `summary()`, `plot()` (the loss curve) and `coef()` (the
#'   parameters as one named vector) work on it.
#'
#'   A non-finite value of `fn` or `gr` stops the run with an error of class
#'   `rmsprop_nonfinite_error` naming the step.
#' @seealso [optimizer_apply()] for the loop written out, [stats::optim()].
#' @export
#' @examplesIf rmsprop::engine_available()
#' # Logistic regression, compared with glm()
#' set.seed(1)
#' x <- cbind(1, matrix(rnorm(400), 200, 2))
#' y <- rbinom(200, 1, plogis(x %*% c(-0.5, 1, 2)))
#' nll <- function(beta, x, y) {
#'   eta <- drop(x %*% beta)
#'   sum(log1p(exp(eta)) - y * eta) / length(y)
#' }
#' grad <- function(beta, x, y) drop(crossprod(x, plogis(drop(x %*% beta)) - y)) / length(y)
#' fit <- rmsprop_minimize(c(b0 = 0, b1 = 0, b2 = 0), nll, grad, x = x, y = y,
#'   optimizer = optimizer_rmsprop(
#'     learning_rate = learning_rate_schedule_exponential_decay(0.05, 100, 0.8)),
#'   control = list(maxit = 2000, reltol = 0))
#' fit
#' cbind(rmsprop = coef(fit), glm = coef(glm(y ~ x[, -1], family = binomial)))
#' plot(fit)
rmsprop_minimize <- function(par, fn, gr, ..., optimizer = optimizer_rmsprop(),
                             control = list()) {
  engine()
  if (!is.function(fn)) arg_error("fn", "a function", fn)
  if (!is.function(gr)) arg_error("gr", "a function", gr)
  check_optimizer(optimizer, "optimizer")
  control <- minimize_control(control)
  is_params <- function(x) {
    is.numeric(x) || (is.list(x) && !is.data.frame(x) && length(x) > 0L &&
                        all(vapply(x, is.numeric, logical(1))))
  }
  if (!is_params(par)) arg_error("par", "a numeric vector or array, or a list of them", par)

  loss_scaled <- reticulate::py_has_attr(optimizer, "inner_optimizer")
  current_rate <- function() as.numeric(reticulate::py_to_r(optimizer$learning_rate))
  evaluate <- function(p, step) {
    value <- fn(p, ...)
    if (!is.numeric(value) || length(value) != 1L) {
      rmsprop_abort(sprintf("`fn` must return a single number; at step %d it returned %s.",
                            step, describe_value(value)),
                    class = "rmsprop_argument_error")
    }
    if (!is.finite(value)) {
      when <- if (step == 0L) {
        "at the starting `par`"
      } else {
        sprintf("after %d optimizer step%s", step, if (step == 1L) "" else "s")
      }
      rmsprop_abort(sprintf("`fn` returned %s at step %d (%s).", format(value), step, when),
                    class = c("rmsprop_nonfinite_error", "rmsprop_argument_error"))
    }
    as.double(value)
  }
  gradient <- function(p, step) {
    g <- gr(p, ...)
    bad <- first_nonfinite(g)
    if (!is.null(bad)) {
      rmsprop_abort(sprintf("`gr` returned %s at step %d%s.", bad$value, step, bad$where),
                    class = c("rmsprop_nonfinite_error", "rmsprop_argument_error"))
    }
    if (loss_scaled) {
      # Keras differentiates scale_loss(loss); the optimizer divides back.
      scale <- as.numeric(reticulate::py_to_r(optimizer$scale_loss(1)))
      g <- if (is.list(g)) lapply(g, function(x) if (is.null(x)) x else x * scale) else g * scale
    }
    g
  }

  maxit <- control$maxit
  every <- control$every
  watch <- control$reltol > 0 || control$abstol > -Inf
  n_fn <- 1L
  value <- evaluate(par, 0L)
  rows <- maxit %/% every + 3L
  hist_step <- integer(rows)
  hist_value <- numeric(rows)
  hist_rate <- rep(NA_real_, rows)
  hist_value[1L] <- value
  n_rows <- 1L
  progress <- minimize_progress(control, maxit)
  convergence <- 1L
  message <- sprintf("maxit (%d) reached", maxit)
  step <- 0L
  while (step < maxit) {
    step <- step + 1L
    record <- step == maxit || step %% every == 0L
    # the learning rate this step uses (a schedule's changes with the step)
    rate <- if (record || watch) current_rate() else NA_real_
    par <- optimizer_apply(optimizer, gradient(par, step), par)
    if (record || watch) {
      previous <- value
      value <- evaluate(par, step)
      n_fn <- n_fn + 1L
    }
    stop_now <- FALSE
    if (watch) {
      if (value < control$abstol) {
        convergence <- 0L
        message <- sprintf("the loss fell below abstol (%g)", control$abstol)
        stop_now <- TRUE
      } else if (abs(previous - value) <= control$reltol * (abs(value) + control$reltol)) {
        convergence <- 0L
        message <- sprintf("one step reduced the loss by less than reltol (%g)", control$reltol)
        stop_now <- TRUE
      }
    }
    if (record || stop_now) {
      n_rows <- n_rows + 1L
      hist_step[n_rows] <- step
      hist_value[n_rows] <- value
      hist_rate[n_rows] <- rate
      if (!stop_now && !is.null(control$callback) &&
          identical(control$callback(step, par, value), FALSE)) {
        convergence <- 2L
        message <- sprintf("stopped by the callback at step %d", step)
        stop_now <- TRUE
      }
    }
    progress(step, value)
    if (stop_now) break
  }
  progress(NULL)
  if (uses_ema(optimizer)) {
    # Keras ends training on the moving averages of the weights.
    par <- optimizer_finalize(optimizer, par)
    value <- evaluate(par, step)
    n_fn <- n_fn + 1L
  }
  keep <- seq_len(n_rows)
  structure(list(
    par = par,
    value = value,
    counts = c(`function` = n_fn, gradient = step),
    convergence = convergence,
    message = message,
    steps = step,
    history = data.frame(step = hist_step[keep], value = hist_value[keep],
                         learning_rate = hist_rate[keep]),
    optimizer = optimizer
  ), class = "rmsprop_minimize")
}

uses_ema <- function(optimizer) {
  inner <- if (reticulate::py_has_attr(optimizer, "inner_optimizer")) {
    optimizer$inner_optimizer
  } else {
    optimizer
  }
  isTRUE(reticulate::py_to_r(reticulate::py_get_attr(inner, "use_ema")))
}

minimize_control <- function(control) {
  if (!is.list(control)) arg_error("control", "a list", control)
  known <- c("maxit", "reltol", "abstol", "trace", "REPORT", "every", "callback")
  unknown <- setdiff(names(control), known)
  if (length(control) && (is.null(names(control)) || any(!nzchar(names(control))))) {
    rmsprop_abort("`control` must be a named list.", class = "rmsprop_argument_error")
  }
  if (length(unknown)) {
    rmsprop_abort(sprintf("`control` has unknown setting%s %s; known: %s.",
                          if (length(unknown) == 1L) "" else "s",
                          paste0("`", unknown, "`", collapse = ", "),
                          paste(known, collapse = ", ")),
                  class = "rmsprop_argument_error")
  }
  out <- list(maxit = 1000L, reltol = sqrt(.Machine$double.eps), abstol = -Inf, trace = 0,
              REPORT = NULL, every = 1L, callback = NULL)
  out[names(control)] <- control
  out$maxit <- check_count(out$maxit, "control$maxit", min = 1)
  if (!is_number(out$reltol) || out$reltol < 0) {
    arg_error("control$reltol", "a number >= 0", out$reltol)
  }
  if (!is_number(out$abstol)) arg_error("control$abstol", "a number", out$abstol)
  if (!is_number(out$trace) || out$trace < 0) {
    arg_error("control$trace", "a number >= 0", out$trace)
  }
  out$every <- check_count(out$every, "control$every", min = 1)
  if (is.null(out$REPORT)) out$REPORT <- max(1L, out$maxit %/% 10L)
  out$REPORT <- check_count(out$REPORT, "control$REPORT", min = 1)
  if (!is.null(out$callback) && !is.function(out$callback)) {
    arg_error("control$callback", "a function or NULL", out$callback)
  }
  out
}

# The first NA, NaN or infinite number in a gradient (a numeric vector or a
# list of them, NULL elements allowed): list(value, where), or NULL.
first_nonfinite <- function(g) {
  parts <- if (is.list(g)) g else list(g)
  keys <- names(parts)
  for (i in seq_along(parts)) {
    x <- parts[[i]]
    if (is.null(x) || !is.numeric(x)) next
    bad <- which(!is.finite(x))
    if (length(bad)) {
      what <- ""
      if (is.list(g)) {
        named <- !is.null(keys) && nzchar(keys[[i]])
        what <- sprintf(" in element %s", if (named) sprintf("'%s'", keys[[i]]) else i)
      }
      return(list(value = format(x[[bad[[1L]]]]),
                  where = sprintf("%s at position %d", what, bad[[1L]])))
    }
  }
  NULL
}

# progress(step, value) after each step, progress(NULL) at the end.
minimize_progress <- function(control, maxit) {
  if (control$trace <= 0) return(function(step, value) invisible())
  if (interactive() && maxit >= 100L) {
    bar <- utils::txtProgressBar(min = 0, max = maxit, style = 3)
    return(function(step, value) {
      if (is.null(step)) close(bar) else utils::setTxtProgressBar(bar, step)
    })
  }
  function(step, value) {
    if (!is.null(step) && step %% control$REPORT == 0L) {
      cat(sprintf("step %d: loss %.8g\n", step, value))
    }
  }
}

#' @export
print.rmsprop_minimize <- function(x, digits = max(3L, getOption("digits") - 3L), ...) {
  cat(sprintf("<rmsprop_minimize> %s after %d step%s: %s\n",
              if (x$convergence == 0L) "converged" else "stopped",
              x$steps, if (x$steps == 1L) "" else "s", x$message))
  cat(sprintf("value: %s\n", format(x$value, digits = digits)))
  cat("par:\n")
  print(coef(x), digits = digits)
  invisible(x)
}

#' @export
summary.rmsprop_minimize <- function(object, ...) {
  structure(list(
    convergence = object$convergence,
    message = object$message,
    steps = object$steps,
    value = object$value,
    counts = object$counts,
    coefficients = coef(object),
    optimizer = paste(format(object$optimizer), collapse = "\n"),
    history = object$history
  ), class = "summary.rmsprop_minimize")
}

#' @export
print.summary.rmsprop_minimize <- function(x, digits = max(3L, getOption("digits") - 3L), ...) {
  cat(sprintf("rmsprop_minimize: convergence %d (%s)\n", x$convergence, x$message))
  cat(sprintf("steps: %d; calls of fn: %d, of gr: %d\n", x$steps,
              x$counts[["function"]], x$counts[["gradient"]]))
  h <- x$history
  cat(sprintf("loss: %s at the start, %s at the end (%d recorded steps)\n",
              format(h$value[[1L]], digits = digits), format(x$value, digits = digits), nrow(h)))
  cat("\nparameters:\n")
  print(x$coefficients, digits = digits)
  cat("\noptimizer:\n", x$optimizer, "\n", sep = "")
  invisible(x)
}

#' @export
plot.rmsprop_minimize <- function(x, y, ..., log = NULL) {
  h <- x$history
  if (is.null(log)) log <- if (all(h$value > 0)) "y" else ""
  args <- list(...)
  defaults <- list(type = "l", xlab = "step", ylab = "loss", main = "rmsprop_minimize")
  defaults <- defaults[setdiff(names(defaults), names(args))]
  do.call(graphics::plot, c(list(h$step, h$value, log = log), defaults, args))
  invisible(x)
}

#' @importFrom stats coef
#' @export
coef.rmsprop_minimize <- function(object, ...) {
  par <- object$par
  if (is.list(par)) return(unlist(par))
  out <- as.vector(par)
  names(out) <- names(par)
  out
}
