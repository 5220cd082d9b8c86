rates <- function(schedule, steps) {
  vapply(steps, function(s) as.numeric(schedule(s)), numeric(1))
}

test_that("schedules give the engine's rates", {
  skip_if_no_engine()
  s <- py_rmsprop()$schedules
  steps <- c(0, 1, 5, 10, 15, 33, 100, 250)
  cases <- list(
    list(learning_rate_schedule_exponential_decay(0.1, 10, 0.5),
         s$ExponentialDecay(0.1, 10L, 0.5)),
    list(learning_rate_schedule_exponential_decay(0.1, 10, 0.5, staircase = TRUE),
         s$ExponentialDecay(0.1, 10L, 0.5, staircase = TRUE)),
    list(learning_rate_schedule_piecewise_constant_decay(c(10, 50), c(1, 0.5, 0.1)),
         s$PiecewiseConstantDecay(list(10L, 50L), list(1, 0.5, 0.1))),
    list(learning_rate_schedule_polynomial_decay(0.1, 100, power = 2),
         s$PolynomialDecay(0.1, 100L, power = 2)),
    list(learning_rate_schedule_polynomial_decay(0.1, 30, cycle = TRUE),
         s$PolynomialDecay(0.1, 30L, cycle = TRUE)),
    list(learning_rate_schedule_inverse_time_decay(0.1, 10, 0.5),
         s$InverseTimeDecay(0.1, 10L, 0.5)),
    list(learning_rate_schedule_cosine_decay(0.1, 100, alpha = 0.1),
         s$CosineDecay(0.1, 100L, alpha = 0.1)),
    list(learning_rate_schedule_cosine_decay(0.1, 100, warmup_target = 1, warmup_steps = 10),
         s$CosineDecay(0.1, 100L, warmup_target = 1, warmup_steps = 10L)),
    list(learning_rate_schedule_cosine_decay_restarts(0.1, 10, t_mul = 2, m_mul = 0.5),
         s$CosineDecayRestarts(0.1, 10L, t_mul = 2, m_mul = 0.5))
  )
  for (case in cases) {
    expect_identical(rates(case[[1]], steps), rates(case[[2]], steps))
    expect_identical(case[[1]]$get_config(), case[[2]]$get_config())
  }
  # a closed form, in float32
  expect_equal(rates(cases[[1]][[1]], 20), 0.025, tolerance = 1e-7)
  # default names are keras3's
  expect_identical(cases[[1]][[1]]$name, "ExponentialDecay")
  expect_identical(learning_rate_schedule_cosine_decay_restarts(1, 5)$name, "SGDRDecay")
  expect_identical(cases[[3]][[1]]$name, "PiecewiseConstant")
})

test_that("boundaries and values reach Python as lists, also at length 1", {
  skip_if_no_engine()
  sch <- learning_rate_schedule_piecewise_constant_decay(boundaries = 5, values = c(1, 0.1))
  is_list <- reticulate::py_eval(
    "lambda s: type(s.boundaries) is list and type(s.values) is list and type(s.boundaries[0]) is int")
  expect_true(is_list(sch))
  expect_equal(rates(sch, c(5, 6)), c(1, 0.1), tolerance = 1e-7)
})

test_that("an optimizer evaluates its schedule at its iterations", {
  skip_if_no_engine()
  sch <- learning_rate_schedule_inverse_time_decay(0.5, 1, 1)
  opt <- optimizer_rmsprop(learning_rate = sch)
  expect_equal(opt$learning_rate, 0.5)
  p <- 0
  for (i in 1:3) p <- optimizer_apply(opt, 1, p)
  expect_identical(opt$learning_rate, as.numeric(sch(3)))
  expect_error(opt$learning_rate <- 0.1, "schedule")
})

test_that("an R function of the step is a learning rate schedule", {
  skip_if_no_engine()
  steps <- numeric()
  rate <- function(step) {
    steps <<- c(steps, step)
    0.1 / (1 + step)
  }
  opt <- optimizer_rmsprop(learning_rate = rate)
  expect_true(is.function(opt$get_config()$learning_rate$config$fn))
  p <- 0
  for (i in 1:3) p <- optimizer_apply(opt, 1, p)
  expect_identical(unique(steps), c(0, 1, 2))
  expect_identical(opt$learning_rate, 0.1 / 4)
  # the same through learning_rate_schedule(), vectorised like the function
  sched <- learning_rate_schedule(function(step) 0.1 / (1 + step))
  expect_s3_class(sched, "rmsprop_schedule")
  expect_identical(sched(0:3), 0.1 / (1 + 0:3))
  expect_match(format(optimizer_rmsprop(learning_rate = sched)), "R function of the step", all = FALSE)
  expect_error(learning_rate_schedule(1), "fn", class = "rmsprop_argument_error")
  # zero-argument functions keep working
  expect_identical(optimizer_rmsprop(learning_rate = function() 0.5)$learning_rate, 0.5)
})

test_that("do.call(optimizer_rmsprop, opt$get_config()) rebuilds the optimizer", {
  skip_if_no_engine()
  # (a number travels as given: 0.1, not the float32 value Python's and
  # Keras' get_config() give, which would make float64 runs differ)
  rates <- list(
    0.1,
    learning_rate_schedule_piecewise_constant_decay(5, c(1, 0.1)),
    learning_rate_schedule_cosine_decay(0.1, 20, warmup_target = 0.5, warmup_steps = 5),
    function(step) 0.1 / (1 + step)
  )
  for (rate in rates) {
    opt <- optimizer_rmsprop(learning_rate = rate, momentum = 0.5, name = "x")
    again <- do.call(optimizer_rmsprop, opt$get_config())
    expect_s3_class(again, "rmsprop_optimizer")
    a <- b <- c(1, 2)
    for (i in 1:8) {
      a <- optimizer_apply(opt, c(1, -1), a)
      b <- optimizer_apply(again, c(1, -1), b)
    }
    expect_identical(a, b)
  }
  opt <- optimizer_rmsprop(learning_rate = 0.1)
  expect_identical(opt$get_config()$learning_rate, 0.1)
  expect_identical(reticulate::py_to_r(reticulate::py_call(
    reticulate::py_get_attr(opt, "get_config")))$learning_rate, 0.10000000149011612)
  ls <- optimizer_loss_scale(optimizer_rmsprop(learning_rate = 0.1))
  expect_identical(ls$get_config()$inner_optimizer$config$learning_rate, 0.1)
})

test_that("schedules print as their config and plot their rates", {
  skip_if_no_engine()
  sched <- learning_rate_schedule_exponential_decay(0.1, 10, 0.5)
  expect_output(print(sched), "<rmsprop_schedule> ExponentialDecay\\(initial_learning_rate = 0.1")
  r_sched <- learning_rate_schedule(function(step) 1 / (1 + step))
  path <- tempfile(fileext = ".pdf")
  grDevices::pdf(path)
  expect_identical(plot(r_sched, steps = 0:10), r_sched)
  grDevices::dev.off()
  unlink(path)
})

test_that("built-in schedules take a vector of steps, and plot", {
  skip_if_no_engine()
  sched <- learning_rate_schedule_piecewise_constant_decay(c(3, 6), c(1, 0.5, 0.25))
  expect_identical(sched(0:8), vapply(0:8, function(s) as.numeric(sched(s)), 0))
  expect_identical(sched(0:8), c(1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25))
  cosine <- learning_rate_schedule_cosine_decay(0.1, 20)
  expect_length(cosine(0:100), 101)
  path <- tempfile(fileext = ".pdf")
  grDevices::pdf(path)
  expect_identical(plot(cosine), cosine)
  grDevices::dev.off()
  unlink(path)
})
