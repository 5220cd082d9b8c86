#' Print and format optimizers
#'
#' One line each for the class and name, the learning rate (or schedule),
#' the hyperparameters that differ from the defaults, the iterations, and
#' whether the optimizer is built. A loss-scale optimizer also shows its
#' dynamic scale and, indented, its inner optimizer.
#'
#' @param x An optimizer.
#' @param ... Unused.
#' @return `format()`: a character vector, one element per line. `print()`:
#'   `x`, invisibly.
#' @name print.rmsprop
#' @examplesIf rmsprop::engine_available()
#' opt <- optimizer_rmsprop(learning_rate = 0.01, momentum = 0.9, centered = TRUE)
#' opt
#' format(opt)
#' optimizer_loss_scale(opt)
NULL

# The engine's defaults: the config of an RMSprop made without arguments
# (its name and learning rate are shown on their own lines).
rmsprop_defaults <- function() {
  defaults <- .rmsprop$defaults
  if (is.null(defaults)) {
    defaults <- engine()$RMSprop()$get_config()
    defaults$name <- NULL
    defaults$learning_rate <- NULL
    .rmsprop$defaults <- defaults
  }
  defaults
}

format_value <- function(x) {
  if (is.null(x)) return("NULL")
  if (is.logical(x)) return(as.character(x))
  if (is.numeric(x)) return(format(x, digits = 7))
  describe_value(x)
}

format_learning_rate <- function(rate) {
  if (is.numeric(rate)) return(format_value(rate))
  if (is.list(rate) && identical(rate$class_name, r_schedule_class_name)) {
    return("an R function of the step (learning_rate_schedule())")
  }
  if (is.list(rate) && !is.null(rate$class_name)) {
    config <- rate$config
    config$name <- NULL
    args <- vapply(names(config), function(k) {
      v <- config[[k]]
      text <- if (is.numeric(v) && length(v) > 1L || is.list(v)) {
        paste0("c(", paste(vapply(v, format_value, ""), collapse = ", "), ")")
      } else {
        format_value(v)
      }
      paste0(k, " = ", text)
    }, character(1))
    return(sprintf("%s(%s)", rate$class_name, paste(args, collapse = ", ")))
  }
  if (is.function(rate) || inherits(rate, "python.builtin.object")) {
    return("a function (called at every step)")
  }
  describe_value(rate)
}

format_rmsprop <- function(x) {
  config <- x$get_config()
  differs <- character()
  defaults <- rmsprop_defaults()
  for (key in names(defaults)) {
    value <- config[[key]]
    default <- defaults[[key]]
    same <- if (is.null(default) || is.null(value)) {
      is.null(default) && is.null(value)
    } else {
      isTRUE(all.equal(as.vector(value), default, tolerance = 0))
    }
    if (!same) differs <- c(differs, paste0(key, " = ", format_value(value)))
  }
  c(
    sprintf("<RMSprop optimizer> name: %s", config$name),
    paste0("  learning_rate: ", format_learning_rate(config$learning_rate)),
    paste0("  hyperparameters: ",
           if (length(differs)) paste0(paste(differs, collapse = ", "), " (others default)")
           else "all defaults"),
    paste0("  iterations: ", format(x$iterations)),
    paste0("  built: ", if (isTRUE(x$built)) "yes" else "no")
  )
}

format_dead <- function(x) {
  sprintf("<%s> (a Python object from an earlier R session; no longer valid)", class(x)[[1L]])
}

#' @rdname print.rmsprop
#' @export
format.rmsprop_optimizer <- function(x, ...) {
  if (reticulate::py_is_null_xptr(x)) return(format_dead(x))
  format_rmsprop(x)
}

#' @rdname print.rmsprop
#' @export
print.rmsprop_optimizer <- function(x, ...) {
  writeLines(format(x, ...))
  invisible(x)
}

#' @rdname print.rmsprop
#' @export
format.rmsprop_loss_scale_optimizer <- function(x, ...) {
  if (reticulate::py_is_null_xptr(x)) return(format_dead(x))
  inner_lines <- format(x$inner_optimizer)
  c(
    sprintf("<LossScaleOptimizer> name: %s", x$name),
    sprintf("  dynamic_scale: %s (initial_scale = %s, dynamic_growth_steps = %d)",
            format_value(x$dynamic_scale),
            format_value(x$initial_scale), as.integer(x$dynamic_growth_steps)),
    paste0("  inner: ", inner_lines[[1L]]),
    paste0("    ", sub("^  ", "", inner_lines[-1L]))
  )
}

#' @rdname print.rmsprop
#' @export
print.rmsprop_loss_scale_optimizer <- function(x, ...) {
  writeLines(format(x, ...))
  invisible(x)
}

#' @rdname print.rmsprop
#' @param object An optimizer.
#' @export
str.rmsprop_optimizer <- function(object, ...) {
  cat(one_line(object), "\n", sep = "")
}

#' @rdname print.rmsprop
#' @export
str.rmsprop_loss_scale_optimizer <- str.rmsprop_optimizer

one_line <- function(x) {
  if (reticulate::py_is_null_xptr(x)) return(format_dead(x))
  sprintf("<%s> '%s': learning_rate %s, %d iterations, %s", class(x)[[1L]], x$name,
          format_value(x$learning_rate), as.integer(x$iterations),
          if (isTRUE(x$built)) "built" else "not built")
}

#' @rdname print.rmsprop
#' @export
summary.rmsprop_optimizer <- function(object, ...) {
  variables <- object$variables
  structure(list(
    text = format(object),
    variables = data.frame(
      name = vapply(variables, function(v) v$name, ""),
      dtype = vapply(variables, function(v) v$dtype, ""),
      dim = vapply(variables, function(v) {
        d <- dim(v)
        if (is.null(d)) "scalar" else paste(d, collapse = " x ")
      }, ""),
      stringsAsFactors = FALSE
    )
  ), class = "summary_rmsprop_optimizer")
}

#' @rdname print.rmsprop
#' @export
summary.rmsprop_loss_scale_optimizer <- summary.rmsprop_optimizer

#' @export
print.summary_rmsprop_optimizer <- function(x, ...) {
  writeLines(x$text)
  cat("  optimizer variables (", nrow(x$variables), "):\n", sep = "")
  print(x$variables, row.names = FALSE)
  invisible(x)
}

#' Learning rate schedules as R objects
#'
#' A schedule prints as its class and config; called with a vector of steps
#' it gives one rate per step, and `plot()` draws the rate against the step.
#'
#' @param x A learning rate schedule.
#' @param steps The steps to plot (the optimizer's raw iteration counts).
#' @param type,xlab,ylab,... Passed to [graphics::plot()] (`format()`,
#'   `print()`: unused).
#' @return `format()`: one line. `print()`, `plot()`: `x`, invisibly.
#' @name print.rmsprop_schedule
#' @examplesIf rmsprop::engine_available()
#' sched <- learning_rate_schedule_cosine_decay(0.1, decay_steps = 100,
#'                                              warmup_target = 0.5, warmup_steps = 20)
#' sched
#' sched(c(0, 10, 20, 60))
#' plot(sched, steps = 0:150)
NULL

#' @rdname print.rmsprop_schedule
#' @export
format.rmsprop_schedule <- function(x, ...) {
  if (reticulate::py_is_null_xptr(x)) return(format_dead(x))
  config <- tryCatch(reticulate::py_to_r(engine()$schedules$serialize(x)), error = function(e) NULL)
  text <- if (is.null(config)) "a schedule" else format_learning_rate(config)
  paste0("<rmsprop_schedule> ", text)
}

#' @rdname print.rmsprop_schedule
#' @export
print.rmsprop_schedule <- function(x, ...) {
  writeLines(format(x))
  invisible(x)
}

#' @rdname print.rmsprop_schedule
#' @export
plot.rmsprop_schedule <- function(x, steps = 0:100, type = "l", xlab = "step",
                                  ylab = "learning rate", ...) {
  rates <- as.numeric(x(steps))
  graphics::plot(steps, rates, type = type, xlab = xlab, ylab = ylab, ...)
  invisible(x)
}
