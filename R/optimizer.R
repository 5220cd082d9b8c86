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
#' To train plain R vectors and arrays, use [optimizer_apply()]; with
#' `use_ema = TRUE`, [optimizer_finalize()] then gives the moving averages
#' of the trained values.
#'
#' The optimizer is the Python engine's object (R class
#' `rmsprop_optimizer`); its Keras methods and fields work from R with `$`
#' (see [rmsprop_fields]): `apply()`, `apply_gradients()`, `build()`,
#' `iterations`, `learning_rate` (read and set), `variables`,
#' `get_config()`, `finalize_variable_values()`,
#' `exclude_from_weight_decay()`, `scale_loss()`.
#' `do.call(optimizer_rmsprop, opt$get_config())` rebuilds an equal optimizer,
#' schedules included (`$get_config()` gives a numeric learning rate as you
#' gave it: see [rmsprop_fields]).
#'
#' R converts the arguments (whole numbers to integers, `NULL`, functions,
#' schedule configs); the engine checks them, and a bad argument is an R
#' error of class `rmsprop_argument_error` with the engine's message, the
#' value written as R writes it (`` `rho` must be a finite number; got NA. ``).
#'
#' @section References:
#' Hinton, G. (2012). Neural Networks for Machine Learning, lecture 6e:
#' rmsprop. <https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf>
#'
#' @param learning_rate A float, a `learning_rate_schedule_*` instance (see
#'   [learning_rate_schedule_exponential_decay()] and
#'   [learning_rate_schedule()]), or a callable that takes no arguments and
#'   returns the actual value to use. An R function of one argument is a
#'   schedule: it is called with the step. The learning rate. Defaults to
#'   `0.001`.
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
#'   variables in-place). For values trained with [optimizer_apply()], call
#'   [optimizer_finalize()] instead: it returns the moving averages.
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
#' @return An RMSprop optimizer: the engine's Python object, of R class
#'   `rmsprop_optimizer`.
#' @seealso [optimizer_apply()], [optimizer_finalize()],
#'   [optimizer_loss_scale()], [learning_rate_schedule_exponential_decay()],
#'   [learning_rate_schedule()], [save_optimizer()], [print.rmsprop].
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
  # R converts (see convert.R); the engine checks every argument.
  args <- list(
    learning_rate = as_py_learning_rate(learning_rate),
    rho = as_py_value(rho),
    momentum = as_py_value(momentum),
    epsilon = as_py_value(epsilon),
    centered = as_py_value(centered),
    weight_decay = as_py_value(weight_decay),
    clipnorm = as_py_value(clipnorm),
    clipvalue = as_py_value(clipvalue),
    global_clipnorm = as_py_value(global_clipnorm),
    use_ema = as_py_value(use_ema),
    ema_momentum = as_py_value(ema_momentum),
    ema_overwrite_frequency = as_py_int(ema_overwrite_frequency),
    loss_scale_factor = as_py_value(loss_scale_factor),
    gradient_accumulation_steps = as_py_int(gradient_accumulation_steps),
    name = as_py_value(name)
  )
  py_try(do.call(engine()$RMSprop, c(args, named_dots(...))),
         c(as.list(environment()), list(...)))
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
#' @return The engine's `LossScaleOptimizer`, of R class
#'   `rmsprop_loss_scale_optimizer`. `iterations` and `learning_rate` are the
#'   inner optimizer's; `dynamic_scale` reads as a number.
#' @export
#' @examplesIf rmsprop::engine_available()
#' opt <- optimizer_loss_scale(optimizer_rmsprop(), initial_scale = 1024)
#' opt$scale_loss(2)
#' p <- optimizer_apply(opt, grads = c(1024, Inf), params = c(1, 1))
#' opt$dynamic_scale  # halved: the step with an Inf gradient was skipped
#' opt
optimizer_loss_scale <- function(inner_optimizer, initial_scale = 32768,
                                 dynamic_growth_steps = 2000L, ..., name = NULL) {
  if (inherits(inner_optimizer, "python.builtin.object")) {
    # (a stale pointer from an earlier session: an R error, not a crash)
    check_optimizer(inner_optimizer, "inner_optimizer")
  }
  args <- list(
    inner_optimizer = as_py_value(inner_optimizer),
    initial_scale = as_py_value(initial_scale),
    dynamic_growth_steps = as_py_int(dynamic_growth_steps),
    name = as_py_value(name)
  )
  py_try(do.call(engine()$LossScaleOptimizer, c(args, named_dots(...))),
         c(as.list(environment()), list(...)))
}
