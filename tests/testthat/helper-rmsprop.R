# Python, NumPy and the engine are part of this project's setup: tests skip
# only when they are absent.
skip_if_no_engine <- function() {
  testthat::skip_if_not(rmsprop::engine_available(), "the rmsprop Python engine is not available")
}

py_rmsprop <- function() reticulate::import("rmsprop")

# TRUE when both optimizers' get_config() are equal in Python, value types too
same_py_config <- function(a, b) {
  check <- reticulate::py_eval(paste(
    "lambda a, b: (lambda x, y: x == y and all(type(x[k]) is type(y[k]) for k in x))",
    "(a.get_config(), b.get_config())"))
  isTRUE(check(a, b))
}

# Plain-R RMSprop (float64), to check optimizer_apply against.
r_rmsprop <- function(params, grads_list, lr, rho = 0.9, momentum = 0, epsilon = 1e-7,
                      centered = FALSE) {
  v <- mg <- m <- params * 0
  for (g in grads_list) {
    v <- rho * v + (1 - rho) * g^2
    denominator <- if (centered) {
      mg <- rho * mg + (1 - rho) * g
      v - mg^2 + epsilon
    } else {
      v + epsilon
    }
    increment <- lr * g / sqrt(denominator)
    if (momentum > 0) {
      m <- momentum * m + increment
      params <- params - m
    } else {
      params <- params - increment
    }
  }
  params
}
