test_that("optimizer_rmsprop() has exactly the documented signature", {
  expected <- as.pairlist(alist(
    learning_rate = 0.001,
    rho = 0.9,
    momentum = 0,
    epsilon = 1e-07,
    centered = FALSE,
    weight_decay = NULL,
    clipnorm = NULL,
    clipvalue = NULL,
    global_clipnorm = NULL,
    use_ema = FALSE,
    ema_momentum = 0.99,
    ema_overwrite_frequency = NULL,
    name = "rmsprop",
    ... = ,
    loss_scale_factor = NULL,
    gradient_accumulation_steps = NULL
  ))
  expect_identical(formals(optimizer_rmsprop), expected)
})

test_that("the other exports have keras3's signatures", {
  sig <- function(f) names(formals(f))
  expect_identical(sig(learning_rate_schedule_exponential_decay),
                   c("initial_learning_rate", "decay_steps", "decay_rate", "staircase", "name"))
  expect_identical(formals(learning_rate_schedule_exponential_decay)$name, "ExponentialDecay")
  expect_identical(sig(learning_rate_schedule_piecewise_constant_decay),
                   c("boundaries", "values", "name"))
  expect_identical(formals(learning_rate_schedule_piecewise_constant_decay)$name, "PiecewiseConstant")
  expect_identical(sig(learning_rate_schedule_polynomial_decay),
                   c("initial_learning_rate", "decay_steps", "end_learning_rate", "power",
                     "cycle", "name"))
  expect_identical(formals(learning_rate_schedule_polynomial_decay)$end_learning_rate, 1e-04)
  expect_identical(sig(learning_rate_schedule_inverse_time_decay),
                   c("initial_learning_rate", "decay_steps", "decay_rate", "staircase", "name"))
  expect_identical(sig(learning_rate_schedule_cosine_decay),
                   c("initial_learning_rate", "decay_steps", "alpha", "name", "warmup_target",
                     "warmup_steps"))
  expect_identical(sig(learning_rate_schedule_cosine_decay_restarts),
                   c("initial_learning_rate", "first_decay_steps", "t_mul", "m_mul", "alpha",
                     "name"))
  expect_identical(formals(learning_rate_schedule_cosine_decay_restarts)$name, "SGDRDecay")
  expect_identical(formals(optimizer_loss_scale),
                   as.pairlist(alist(inner_optimizer = , initial_scale = 32768,
                                     dynamic_growth_steps = 2000L, ... = , name = NULL)))
  expect_identical(formals(rmsprop_variable),
                   as.pairlist(alist(value = , dtype = NULL, name = NULL)))
  expect_identical(sig(optimizer_apply)[1:4], c("optimizer", "grads", "params", "..."))
  expect_identical(sig(save_optimizer), c("optimizer", "path"))
  expect_identical(sig(load_optimizer), c("path", "custom_objects", "check_names"))
})
