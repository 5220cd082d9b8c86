test_that("optimizer_rmsprop() returns the engine's RMSprop object", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop()
  expect_s3_class(opt, "rmsprop_optimizer")
  expect_s3_class(opt, "python.builtin.object")
  expect_true(reticulate::py_to_r(reticulate::import_builtins()$isinstance(opt, py_rmsprop()$RMSprop)))
})

test_that("defaults equal Keras'", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop()
  config <- opt$get_config()
  # a float learning rate is stored in float32, as Keras does, and Python's
  # get_config() gives that value; R's gives the number as given
  expect_identical(reticulate::py_to_r(reticulate::py_call(
    reticulate::py_get_attr(opt, "get_config")))$learning_rate, 0.0010000000474974513)
  expect_identical(config$learning_rate, 0.001)
  expect_identical(config$rho, 0.9)
  expect_identical(config$momentum, 0)
  expect_identical(config$epsilon, 1e-7)
  expect_false(config$centered)
  expect_null(config$weight_decay)
  expect_null(config$clipnorm)
  expect_null(config$clipvalue)
  expect_null(config$global_clipnorm)
  expect_false(config$use_ema)
  expect_identical(config$ema_momentum, 0.99)
  expect_null(config$ema_overwrite_frequency)
  expect_null(config$loss_scale_factor)
  expect_null(config$gradient_accumulation_steps)
  expect_identical(config$name, "rmsprop")
  expect_true(same_py_config(optimizer_rmsprop(), py_rmsprop()$RMSprop()))
})

test_that("every argument reaches the engine, with Python's types", {
  skip_if_no_engine()
  rm <- py_rmsprop()
  r <- optimizer_rmsprop(learning_rate = 0.01, rho = 0.8, momentum = 0.5, epsilon = 1e-6,
                         centered = TRUE, weight_decay = 0.004, clipnorm = 1.5,
                         use_ema = TRUE, ema_momentum = 0.9, ema_overwrite_frequency = 3,
                         name = "opt", loss_scale_factor = 4, gradient_accumulation_steps = 2)
  py <- rm$RMSprop(learning_rate = 0.01, rho = 0.8, momentum = 0.5, epsilon = 1e-6,
                   centered = TRUE, weight_decay = 0.004, clipnorm = 1.5, use_ema = TRUE,
                   ema_momentum = 0.9, ema_overwrite_frequency = 3L, name = "opt",
                   loss_scale_factor = 4, gradient_accumulation_steps = 2L)
  expect_true(same_py_config(r, py))
  config <- r$get_config()
  # (R gives the learning rate as given, Python its float32 value)
  expect_identical(config$learning_rate, 0.01)
  expect_identical(py$get_config()$learning_rate, 0.009999999776482582)
  expect_identical(config[names(config) != "learning_rate"],
                   py$get_config()[names(config) != "learning_rate"])
  expect_type(config$ema_overwrite_frequency, "integer")
  expect_type(config$gradient_accumulation_steps, "integer")
  expect_identical(config$ema_overwrite_frequency, 3L)
  expect_identical(config$gradient_accumulation_steps, 2L)

  expect_true(same_py_config(optimizer_rmsprop(clipvalue = 0.5),
                             rm$RMSprop(clipvalue = 0.5)))
  expect_true(same_py_config(optimizer_rmsprop(global_clipnorm = 2),
                             rm$RMSprop(global_clipnorm = 2)))
  # whole numbers given as R integers work too
  expect_true(same_py_config(optimizer_rmsprop(learning_rate = 1L, ema_overwrite_frequency = 5L),
                             rm$RMSprop(learning_rate = 1L, ema_overwrite_frequency = 5L)))
})

test_that("`...` is passed on to the engine", {
  skip_if_no_engine()
  expect_error(optimizer_rmsprop(unknown_argument = 1), "unknown_argument")
  expect_warning(opt <- optimizer_rmsprop(decay = 0.1), "decay")
  expect_s3_class(opt, "rmsprop_optimizer")
})

test_that("the Keras methods work from R", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop(learning_rate = 0.1, weight_decay = 0.1)
  w <- rmsprop_variable(c(1, 2), dtype = "float64", name = "w")
  b <- rmsprop_variable(0.5, dtype = "float64", name = "bias")
  opt$exclude_from_weight_decay(var_names = "bias")
  opt$build(list(w, b))
  expect_true(opt$built)
  opt$apply(list(c(0.5, -0.5), 1), list(w, b))
  expect_identical(opt$iterations, 1L)
  opt$apply_gradients(list(list(c(0.5, -0.5), w), list(1, b)))
  expect_identical(opt$iterations, 2L)
  names <- vapply(opt$variables, function(v) v$name, "")
  expect_identical(names, c("iteration", "learning_rate", "w_velocity", "bias_velocity"))
  expect_equal(opt$learning_rate, 0.1, tolerance = 1e-7)
  opt$learning_rate <- 0.5
  expect_equal(opt$learning_rate, 0.5)
  expect_identical(opt$scale_loss(3), 3)
  expect_identical(optimizer_rmsprop(loss_scale_factor = 4)$scale_loss(3), 12)
  opt$finalize_variable_values()
  expect_error(opt$exclude_from_weight_decay(var_names = "w"), "built")

  # var_names of length 1 stays a list; excluded variables get no decay
  o1 <- optimizer_rmsprop(learning_rate = 0.1, weight_decay = 0.5)
  o1$exclude_from_weight_decay(var_names = "b")
  p1 <- optimizer_apply(o1, list(w = 0, b = 0), list(w = 1, b = 1))
  expect_equal(p1$b, 1)
  expect_lt(p1$w, 1)
})

test_that("an R function is a learning rate called with no arguments", {
  skip_if_no_engine()
  calls <- 0
  rate <- function() {
    calls <<- calls + 1
    0.25
  }
  opt <- optimizer_rmsprop(learning_rate = rate)
  expect_identical(opt$learning_rate, 0.25)
  p <- optimizer_apply(opt, 1, 0)
  expect_gt(calls, 1)
  expect_equal(p, r_rmsprop(0, list(1), lr = 0.25))
  # the function's result must be a number
  bad <- optimizer_rmsprop(learning_rate = function() "fast")
  expect_error(optimizer_apply(bad, 1, 0), "learning_rate")
  # assigned from R, too
  opt2 <- optimizer_rmsprop()
  opt2$learning_rate <- function() 0.125
  expect_identical(opt2$learning_rate, 0.125)
})

test_that("hyperparameters set with $<- are checked as the constructor checks them", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop()
  expect_error(opt$rho <- 2, "`rho`", class = "rmsprop_engine_error")
  expect_error(opt$centered <- "yes", "`centered`", class = "rmsprop_engine_error")
  expect_identical(opt$rho, 0.9)
  # whole numbers reach Python as integers, as from optimizer_rmsprop()
  opt$ema_overwrite_frequency <- 2
  expect_identical(opt$ema_overwrite_frequency, 2L)
  expect_error(opt$ema_overwrite_frequency <- 2.5, "ema_overwrite_frequency",
               class = "rmsprop_argument_error")
  optimizer_apply(opt, 1, 0)
  # slots are made when the optimizer is built: momentum cannot be added later
  expect_error(opt$momentum <- 0.9, "`momentum` cannot be set", class = "rmsprop_engine_error")
})
