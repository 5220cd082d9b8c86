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

rmsprop_defaults <- list(
  rho = 0.9, momentum = 0, epsilon = 1e-07, centered = FALSE, weight_decay = NULL,
  clipnorm = NULL, clipvalue = NULL, global_clipnorm = NULL, use_ema = FALSE,
  ema_momentum = 0.99, ema_overwrite_frequency = NULL, loss_scale_factor = NULL,
  gradient_accumulation_steps = NULL
)

format_value <- function(x) {
  if (is.null(x)) return("NULL")
  if (is.logical(x)) return(as.character(x))
  if (is.numeric(x)) return(format(x, digits = 7))
  describe_value(x)
}

format_learning_rate <- function(rate) {
  if (is.numeric(rate)) return(format_value(rate))
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
  for (key in names(rmsprop_defaults)) {
    value <- config[[key]]
    default <- rmsprop_defaults[[key]]
    same <- if (is.null(default) || is.null(value)) {
      is.null(default) && is.null(value)
    } else {
      isTRUE(all.equal(as.vector(value), default, tolerance = 0))
    }
    if (!same) differs <- c(differs, paste0(key, " = ", format_value(value)))
  }
  c(
    sprintf("<%s optimizer> name: %s", sub("^.*\\.", "", class(x)[[1L]]), config$name),
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
format.rmsprop.rmsprop_optimizer.RMSprop <- function(x, ...) {
  if (reticulate::py_is_null_xptr(x)) return(format_dead(x))
  format_rmsprop(x)
}

#' @rdname print.rmsprop
#' @export
print.rmsprop.rmsprop_optimizer.RMSprop <- function(x, ...) {
  writeLines(format(x, ...))
  invisible(x)
}

#' @rdname print.rmsprop
#' @export
format.rmsprop.loss_scale.LossScaleOptimizer <- function(x, ...) {
  if (reticulate::py_is_null_xptr(x)) return(format_dead(x))
  inner <- x$inner_optimizer
  inner_lines <- if (inherits(inner, "rmsprop.rmsprop_optimizer.RMSprop")) {
    format_rmsprop(inner)
  } else {
    format(inner)
  }
  c(
    sprintf("<LossScaleOptimizer> name: %s", x$name),
    sprintf("  dynamic_scale: %s (initial_scale = %s, dynamic_growth_steps = %d)",
            format_value(as.numeric(reticulate::py_to_r(x$dynamic_scale$numpy()))),
            format_value(x$initial_scale), as.integer(x$dynamic_growth_steps)),
    paste0("  inner: ", inner_lines[[1L]]),
    paste0("    ", sub("^  ", "", inner_lines[-1L]))
  )
}

#' @rdname print.rmsprop
#' @export
print.rmsprop.loss_scale.LossScaleOptimizer <- function(x, ...) {
  writeLines(format(x, ...))
  invisible(x)
}
