#' rmsprop: Keras 3's RMSprop optimizer for R
#'
#' Keras 3's RMSprop optimizer ([optimizer_rmsprop()]), its loss-scale
#' wrapper ([optimizer_loss_scale()]) and learning rate schedules
#' ([learning_rate_schedule_exponential_decay()] and friends), computed by a
#' NumPy engine through reticulate. Train R values with [optimizer_apply()];
#' save and restore optimizers with [save_optimizer()] and
#' [load_optimizer()]. See [engine_available()] for how Python is found.
#'
#' @keywords internal
"_PACKAGE"

#' @importFrom utils str
NULL
