#' Optimizer that implements the RMSprop algorithm
#'
#' @description
#' The gist of RMSprop is to:
#' * Maintain a moving (discounted) average of the square of gradients
#' * Divide the gradient by the root of this average
#'
#' This implementation of RMSprop uses plain momentum, not Nesterov momentum.
#'
#' The centered version additionally maintains a moving average of the
#' gradients, and uses that average to estimate the variance.
#'
#' The optimizer is the Python engine's object as is; its Keras methods work
#' from R with `$`: `apply()`, `apply_gradients()`, `build()`, `iterations`,
#' `learning_rate` (read and set), `variables`, `get_config()`,
#' `finalize_variable_values()`, `exclude_from_weight_decay()`,
#' `scale_loss()`. To train plain R vectors and arrays, use
#' [optimizer_apply()].
#'
#' @param learning_rate A float, a `learning_rate_schedule_*` instance, or a
#'   callable that takes no arguments and returns the actual value to use. The
#'   learning rate. Defaults to `0.001`.
#' @param rho float, defaults to 0.9. Discounting factor for the old gradients.
#' @param momentum float, defaults to 0.0. If not 0.0., the optimizer tracks
#'   the momentum value, with a decay rate equals to `1 - momentum`.
#' @param epsilon A small constant for numerical stability. This epsilon is
#'   "epsilon hat" in the Kingma and Ba paper (in the formula just before
#'   Section 2.1), not the epsilon in Algorithm 1 of the paper. Defaults to
#'   1e-7.
#' @param centered Boolean. If `TRUE`, gradients are normalized by the
#'   estimated variance of the gradient; if FALSE, by the uncentered second
#'   moment. Setting this to `TRUE` may help with training, but is slightly
#'   more expensive in terms of computation and memory. Defaults to `FALSE`.
#' @param weight_decay Float. If set, weight decay is applied.
#' @param clipnorm Float. If set, the gradient of each weight is individually
#'   clipped so that its norm is no higher than this value.
#' @param clipvalue Float. If set, the gradient of each weight is clipped to
#'   be no higher than this value.
#' @param global_clipnorm Float. If set, the gradient of all weights is
#'   clipped so that their global norm is no higher than this value.
#' @param use_ema Boolean, defaults to `FALSE`. If `TRUE`, exponential moving
#'   average (EMA) is applied. EMA consists of computing an exponential moving
#'   average of the weights of the model (as the weight values change after
#'   each training batch), and periodically overwriting the weights with their
#'   moving average.
#' @param ema_momentum Float, defaults to 0.99. Only used if `use_ema=TRUE`.
#'   This is the momentum to use when computing the EMA of the model's
#'   weights: `new_average = ema_momentum * old_average + (1 - ema_momentum) *
#'   current_variable_value`.
#' @param ema_overwrite_frequency Int or NULL, defaults to NULL. Only used if
#'   `use_ema=TRUE`. Every `ema_overwrite_frequency` steps of iterations, we
#'   overwrite the model variable by its moving average. If NULL, the optimizer
#'   does not overwrite model variables in the middle of training, and you
#'   need to explicitly overwrite the variables at the end of training by
#'   calling `optimizer$finalize_variable_values()` (which updates the model
#'   variables in-place).
#' @param name String. The name to use for momentum accumulator weights
#'   created by the optimizer.
#' @param ... For forward/backward compatability: passed on to the engine
#'   (`decay` is ignored with a warning, as in Keras; unknown arguments are
#'   an error).
#' @param loss_scale_factor Float or `NULL`. If a float, the scale factor
#'   will be multiplied the loss before computing gradients, and the inverse
#'   of the scale factor will be multiplied by the gradients before updating
#'   variables. Useful for preventing underflow during mixed precision
#'   training. Alternately, [optimizer_loss_scale()] will automatically set a
#'   loss scale factor.
#' @param gradient_accumulation_steps Int or `NULL`. If an int, model and
#'   optimizer variables will not be updated at every step; instead they will
#'   be updated every `gradient_accumulation_steps` steps, using the average
#'   value of the gradients since the last update. This is known as "gradient
#'   accumulation". EMA frequency will look at "accumulated" iterations value
#'   (optimizer steps // gradient_accumulation_steps). Learning rate schedules
#'   will look at "real" iterations value (optimizer steps).
#'
#' @return An RMSprop optimizer: the engine's Python object (class
#'   `rmsprop.rmsprop_optimizer.RMSprop`).
#' @seealso [optimizer_apply()], [optimizer_loss_scale()],
#'   [learning_rate_schedule_exponential_decay()], [save_optimizer()].
#' @export
#' @examplesIf rmsprop::engine_available()
#' opt <- optimizer_rmsprop(learning_rate = 0.1)
#' opt
#' opt$get_config()$rho
#'
#' # Keras-style use with engine variables
#' w <- rmsprop_variable(c(1, 2), name = "w")
#' opt$apply(list(c(0.5, -0.5)), list(w))
#' as.numeric(w)
#' opt$iterations
optimizer_rmsprop <- function(learning_rate = 0.001, rho = 0.9, momentum = 0, epsilon = 1e-07,
                              centered = FALSE, weight_decay = NULL, clipnorm = NULL,
                              clipvalue = NULL, global_clipnorm = NULL, use_ema = FALSE,
                              ema_momentum = 0.99, ema_overwrite_frequency = NULL,
                              name = "rmsprop", ..., loss_scale_factor = NULL,
                              gradient_accumulation_steps = NULL) {
  # The package's Python first: converting an R function learning rate
  # below would otherwise let reticulate pick one.
  engine()
  args <- list(
    learning_rate = as_py_learning_rate(learning_rate, "learning_rate"),
    rho = check_number(rho, "rho", min = 0, max = 1),
    momentum = check_number(momentum, "momentum", min = 0),
    epsilon = check_number(epsilon, "epsilon", min = 0),
    centered = check_flag(centered, "centered"),
    weight_decay = check_number(weight_decay, "weight_decay", null_ok = TRUE, min = 0),
    clipnorm = check_number(clipnorm, "clipnorm", null_ok = TRUE, min = 0, min_open = TRUE),
    clipvalue = check_number(clipvalue, "clipvalue", null_ok = TRUE, min = 0, min_open = TRUE),
    global_clipnorm = check_number(global_clipnorm, "global_clipnorm", null_ok = TRUE,
                                   min = 0, min_open = TRUE),
    use_ema = check_flag(use_ema, "use_ema"),
    ema_momentum = check_number(ema_momentum, "ema_momentum", min = 0, max = 1),
    ema_overwrite_frequency = check_count(ema_overwrite_frequency, "ema_overwrite_frequency",
                                          null_ok = TRUE, min = 1),
    loss_scale_factor = check_number(loss_scale_factor, "loss_scale_factor", null_ok = TRUE,
                                     min = 0, min_open = TRUE),
    gradient_accumulation_steps = check_accumulation(gradient_accumulation_steps),
    name = check_string(name, "name")
  )
  clips <- c("clipnorm", "clipvalue", "global_clipnorm")
  set <- clips[!vapply(args[clips], is.null, logical(1))]
  if (length(set) > 1L) {
    rmsprop_abort(sprintf(paste0("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` ",
                                 "can be set; got %s."),
                          paste0("`", set, "`", collapse = " and ")),
                  class = "rmsprop_argument_error")
  }
  dots <- engine_dots(...)
  rmsprop <- engine()
  py_try(do.call(rmsprop$RMSprop, c(args, dots)))
}

check_accumulation <- function(x, arg = "gradient_accumulation_steps") {
  x <- check_count(x, arg, null_ok = TRUE, min = 0)
  if (!is.null(x) && x == 1L) {
    arg_error(arg, "NULL, 0 (off) or a whole number >= 2", 1)
  }
  x
}

# `...` as a list whose elements all have names (they become Python keywords).
named_dots <- function(...) {
  dots <- list(...)
  if (length(dots) && (is.null(names(dots)) || any(!nzchar(names(dots))))) {
    rmsprop_abort("Arguments in `...` must be named.", class = "rmsprop_argument_error")
  }
  dots
}

# `...` for the engine: named; `decay` is dropped with a warning, as Keras does.
engine_dots <- function(...) {
  dots <- named_dots(...)
  keys <- names(dots)
  if ("decay" %in% keys) {
    warning("`decay` is not supported in Keras 3 optimizers and is ignored; ",
            "use a learning rate schedule instead.", call. = FALSE)
    dots <- dots[keys != "decay"]
  }
  dots
}

#' An optimizer that applies dynamic loss scaling
#'
#' Wraps an optimizer (e.g. [optimizer_rmsprop()]) with dynamic loss scaling,
#' as Keras' `LossScaleOptimizer`: the loss is multiplied by a scale
#' (`optimizer$scale_loss(loss)`) before computing gradients, and gradients
#' are divided by it before the inner optimizer sees them. A step whose
#' gradients are not all finite is skipped and the scale halved; after
#' `dynamic_growth_steps` good steps in a row the scale doubles.
#'
#' @param inner_optimizer The optimizer to wrap, from [optimizer_rmsprop()].
#' @param initial_scale Float. The initial loss scale (`2^15`).
#' @param dynamic_growth_steps Int. How often to double the scale: after this
#'   many consecutive steps with finite gradients.
#' @param ... Passed on to the engine (arguments of the base optimizer such
#'   as `learning_rate` belong to the inner optimizer and are an error here).
#' @param name String or `NULL`: the optimizer's name
#'   (`"loss_scale_optimizer"` when `NULL`).
#' @return The engine's `rmsprop.LossScaleOptimizer` (class
#'   `rmsprop.loss_scale.LossScaleOptimizer`). `iterations` and
#'   `learning_rate` are the inner optimizer's.
#' @export
#' @examplesIf rmsprop::engine_available()
#' opt <- optimizer_loss_scale(optimizer_rmsprop(), initial_scale = 1024)
#' opt$scale_loss(2)
#' p <- optimizer_apply(opt, grads = c(1024, Inf), params = c(1, 1))
#' opt$dynamic_scale  # halved: the step with an Inf gradient was skipped
#' opt
optimizer_loss_scale <- function(inner_optimizer, initial_scale = 32768,
                                 dynamic_growth_steps = 2000L, ..., name = NULL) {
  if (!inherits(inner_optimizer, "rmsprop.base_optimizer.BaseOptimizer")) {
    arg_error("inner_optimizer", "an optimizer from optimizer_rmsprop()", inner_optimizer)
  }
  check_optimizer(inner_optimizer, "inner_optimizer")
  args <- list(
    inner_optimizer = inner_optimizer,
    initial_scale = check_number(initial_scale, "initial_scale", min = 0, min_open = TRUE),
    dynamic_growth_steps = check_count(dynamic_growth_steps, "dynamic_growth_steps", min = 1),
    name = check_string(name, "name", null_ok = TRUE)
  )
  dots <- named_dots(...)
  rmsprop <- engine()
  py_try(do.call(rmsprop$LossScaleOptimizer, c(args, dots)))
}

# Setting `learning_rate` from R goes through the same conversion as
# optimizer_rmsprop(); everything else is reticulate's.

count_arguments <- c("ema_overwrite_frequency", "gradient_accumulation_steps",
                     "dynamic_growth_steps")

#' @export
`$<-.rmsprop.base_optimizer.BaseOptimizer` <- function(x, name, value) { # nolint: object_name.
  set_attribute(x, name, value)
}

#' @export
`$<-.rmsprop.loss_scale.LossScaleOptimizer` <- function(x, name, value) { # nolint: object_name.
  set_attribute(x, name, value)
}

set_attribute <- function(x, name, value) {
  if (identical(name, "learning_rate")) value <- as_py_learning_rate(value, "learning_rate")
  # Counts reach Python as integers, as from the constructors (the engine
  # checks every value as its constructor does).
  if (name %in% count_arguments && is.numeric(value)) value <- check_count(value, name)
  py_try(reticulate::py_set_attr(x, name, value))
  invisible(x)
}
