# optimizer_apply() in float64 (the default) computes in R's precision: every
# hyperparameter and schedule value is used as the double R gave, so the
# results are identical() to RMSprop written in plain R in Keras' order of
# operations (keras/src/optimizers/rmsprop.py update_step, and
# base_optimizer.py apply: clipping, weight decay, update, EMA).

# NumPy's np.sum adds fewer than 8 numbers one after the other in double;
# R's sum() would use long double.
sequential_sum <- function(x) Reduce(`+`, as.vector(x), accumulate = FALSE)

keras_rmsprop_in_r <- function(params, grads_list, learning_rate, rho = 0.9, momentum = 0,
                               epsilon = 1e-7, centered = FALSE, weight_decay = NULL,
                               clipnorm = NULL, clipvalue = NULL, global_clipnorm = NULL,
                               use_ema = FALSE, ema_momentum = 0.99) {
  zeros <- lapply(params, function(p) p * 0)
  velocity <- average_grad <- moments <- average <- zeros
  for (step in seq_along(grads_list) - 1) {
    grads <- grads_list[[step + 1]]
    lr <- if (is.function(learning_rate)) learning_rate(step) else learning_rate
    if (!is.null(clipnorm)) {
      grads <- lapply(grads, function(g) {
        l2sum <- sequential_sum(g * g)
        l2norm <- if (l2sum > 0) sqrt(l2sum) else l2sum
        g * clipnorm / max(l2norm, clipnorm)
      })
    }
    if (!is.null(clipvalue)) grads <- lapply(grads, function(g) pmax(pmin(g, clipvalue), -clipvalue))
    if (!is.null(global_clipnorm)) {
      norm <- sqrt(sequential_sum(vapply(grads, function(g) sequential_sum(g * g), 0)))
      scale <- global_clipnorm * min(1 / norm, 1 / global_clipnorm) + (norm - norm)
      grads <- lapply(grads, function(g) g * scale)
    }
    if (!is.null(weight_decay)) params <- lapply(params, function(p) p - p * weight_decay * lr)
    for (i in seq_along(params)) {
      g <- grads[[i]]
      velocity[[i]] <- rho * velocity[[i]] + (1 - rho) * (g * g)
      denominator <- if (centered) {
        average_grad[[i]] <- rho * average_grad[[i]] + (1 - rho) * g
        velocity[[i]] - average_grad[[i]] * average_grad[[i]] + epsilon
      } else {
        velocity[[i]] + epsilon
      }
      increment <- lr * g / sqrt(denominator)
      if (momentum > 0) {
        moments[[i]] <- momentum * moments[[i]] + increment
        params[[i]] <- params[[i]] - moments[[i]]
      } else {
        params[[i]] <- params[[i]] - increment
      }
    }
    if (use_ema) {
      decay <- if (step == 0) 0 else ema_momentum
      for (i in seq_along(params)) average[[i]] <- decay * average[[i]] + (1 - decay) * params[[i]]
    }
  }
  if (use_ema) list(params = params, average = average) else list(params = params)
}

float64_case <- function(...) {
  set.seed(3)
  params <- list(w = c(0.5, -1.25, 2, 0.1, -0.7), b = 0.3)
  grads_list <- replicate(6, list(w = rnorm(5), b = rnorm(1)), simplify = FALSE)
  args <- list(...)
  # a schedule comes with its formula in R (Keras' ExponentialDecay:
  # initial_learning_rate * decay_rate ^ (step / decay_steps))
  rate <- if (is.null(args$formula)) args$learning_rate else args$formula
  args$formula <- NULL
  if (is.function(rate) && !length(formals(rate))) rate <- rate()
  expected <- do.call(keras_rmsprop_in_r,
                      c(list(params = params, grads_list = grads_list, learning_rate = rate),
                        args[setdiff(names(args), "learning_rate")]))
  opt <- do.call(optimizer_rmsprop, args)
  p <- params
  for (g in grads_list) p <- optimizer_apply(opt, g, p)
  list(expected = expected, params = p,
       finalized = if (isTRUE(args$use_ema)) optimizer_finalize(opt, p))
}

test_that("float64 optimizer_apply() is identical to plain-R RMSprop for every feature", {
  skip_if_no_engine()
  cases <- list(
    list(learning_rate = 0.1),
    list(learning_rate = 0.1, centered = TRUE),
    list(learning_rate = 0.1, momentum = 0.9),
    list(learning_rate = 0.1, rho = 0.7, epsilon = 1e-3, centered = TRUE, momentum = 0.5),
    list(learning_rate = 0.1, weight_decay = 0.03),
    list(learning_rate = 0.1, clipnorm = 0.7),
    list(learning_rate = 0.1, clipvalue = 0.3),
    list(learning_rate = 0.1, global_clipnorm = 0.9),
    list(learning_rate = 0.1, use_ema = TRUE, ema_momentum = 0.7),
    list(learning_rate = function(step) 0.1 / (1 + step)),
    list(learning_rate = function() 0.03),
    list(learning_rate = learning_rate_schedule_exponential_decay(0.1, 3, 0.7),
         formula = function(step) 0.1 * 0.7^(step / 3)),
    list(learning_rate = learning_rate_schedule_inverse_time_decay(0.1, 2, 0.5),
         formula = function(step) 0.1 / (1 + 0.5 * (step / 2)))
  )
  for (case in cases) {
    result <- do.call(float64_case, case)
    label <- paste(deparse(case), collapse = " ")
    expect_identical(result$params, result$expected$params, label = label)
    if (!is.null(result$finalized)) {
      expect_identical(result$finalized, result$expected$average, label = label)
    }
  }
})

test_that("a learning rate beyond float32 stays a double in float64", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop(learning_rate = 0.1)
  p <- optimizer_apply(opt, 1, 1)
  expect_identical(p, 1 - 0.1 * 1 / sqrt(0.1 * 1 + 1e-7))
  expect_identical(opt$learning_rate, 0.1)
})
