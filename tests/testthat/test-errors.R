test_that("optimizer_rmsprop() rejects bad arguments, naming them", {
  skip_if_no_engine()
  bad <- list(
    learning_rate = list("a", NA, c(0.1, 0.2), -1, TRUE, list(1)),
    rho = list("a", NA, c(0.5, 0.6), 2, NULL),
    momentum = list("0", -1, NA_real_),
    epsilon = list(-1, "a", Inf),
    centered = list(NA, "yes", 1, c(TRUE, FALSE)),
    weight_decay = list(-0.1, "a", NA),
    clipnorm = list(0, "1", c(1, 2)),
    clipvalue = list(-1, NA),
    global_clipnorm = list(0, TRUE),
    use_ema = list(NA, 1, "TRUE"),
    ema_momentum = list(1.5, -0.1, "a"),
    ema_overwrite_frequency = list(2.5, 0, "3", NA, c(1, 2)),
    name = list(1, NA_character_, "", c("a", "b")),
    loss_scale_factor = list(0, "2"),
    gradient_accumulation_steps = list(1.5, 1, -2, "2", NA)
  )
  for (arg in names(bad)) {
    for (value in bad[[arg]]) {
      args <- list(value)
      names(args) <- arg
      if (is.null(value)) args <- stats::setNames(list(NULL), arg)
      expect_error(do.call(optimizer_rmsprop, args), arg, fixed = TRUE,
                   info = paste(arg, "=", deparse(value)))
    }
  }
  expect_error(optimizer_rmsprop(clipnorm = 1, global_clipnorm = 1), "global_clipnorm")
  e <- tryCatch(optimizer_rmsprop(rho = "a"), error = identity)
  expect_s3_class(e, "rmsprop_error")
})

test_that("schedules reject bad arguments, naming them", {
  skip_if_no_engine()
  expect_error(learning_rate_schedule_exponential_decay("a", 10, 0.5), "initial_learning_rate")
  expect_error(learning_rate_schedule_exponential_decay(0.1, "a", 0.5), "decay_steps")
  expect_error(learning_rate_schedule_exponential_decay(0.1, 0, 0.5), "decay_steps")
  expect_error(learning_rate_schedule_exponential_decay(0.1, 10, NA), "decay_rate")
  expect_error(learning_rate_schedule_exponential_decay(0.1, 10, 0.5, staircase = NA), "staircase")
  expect_error(learning_rate_schedule_exponential_decay(0.1, 10, 0.5, name = 1), "name")
  expect_error(learning_rate_schedule_piecewise_constant_decay("a", c(1, 2)), "boundaries")
  expect_error(learning_rate_schedule_piecewise_constant_decay(c(10, 5), c(1, 2, 3)), "boundaries")
  expect_error(learning_rate_schedule_piecewise_constant_decay(10, c(1, 2, 3)), "values")
  expect_error(learning_rate_schedule_piecewise_constant_decay(10, c(1, NA)), "values")
  expect_error(learning_rate_schedule_polynomial_decay(0.1, 10, end_learning_rate = "a"),
               "end_learning_rate")
  expect_error(learning_rate_schedule_polynomial_decay(0.1, 10, power = NA), "power")
  expect_error(learning_rate_schedule_polynomial_decay(0.1, 10, cycle = "no"), "cycle")
  expect_error(learning_rate_schedule_inverse_time_decay(0.1, -1, 0.5), "decay_steps")
  expect_error(learning_rate_schedule_cosine_decay(0.1, 10, alpha = "a"), "alpha")
  expect_error(learning_rate_schedule_cosine_decay(0.1, 10, warmup_target = "a"), "warmup_target")
  expect_error(learning_rate_schedule_cosine_decay(0.1, 10, warmup_steps = -1), "warmup_steps")
  expect_error(learning_rate_schedule_cosine_decay_restarts(0.1, 0), "first_decay_steps")
  expect_error(learning_rate_schedule_cosine_decay_restarts(0.1, 10, t_mul = NA), "t_mul")
  expect_error(learning_rate_schedule_cosine_decay_restarts(0.1, 10, m_mul = "a"), "m_mul")
})

test_that("optimizer_loss_scale() and rmsprop_variable() reject bad arguments", {
  skip_if_no_engine()
  expect_error(optimizer_loss_scale(1), "inner_optimizer")
  expect_error(optimizer_loss_scale(optimizer_loss_scale(optimizer_rmsprop())), "inner_optimizer")
  expect_error(optimizer_loss_scale(optimizer_rmsprop(), initial_scale = 0), "initial_scale")
  expect_error(optimizer_loss_scale(optimizer_rmsprop(), dynamic_growth_steps = 2.5),
               "dynamic_growth_steps")
  expect_error(optimizer_loss_scale(optimizer_rmsprop(), name = 1), "name")
  expect_error(optimizer_loss_scale(optimizer_rmsprop(), learning_rate = 0.1), "learning_rate")
  expect_error(rmsprop_variable("a"), "initializer", class = "rmsprop_argument_error")
  expect_error(rmsprop_variable(1, dtype = 1), "dtype")
  expect_error(rmsprop_variable(1, dtype = "complex128"), "dtype")
  expect_error(rmsprop_variable(1, name = NA), "name")
})

test_that("optimizer_apply() rejects bad input before Python, naming the argument", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop()
  expect_error(optimizer_apply(1, 1, 1), "optimizer")
  expect_error(optimizer_apply(opt, 1, "a"), "params")
  expect_error(optimizer_apply(opt, 1, TRUE), "params")
  expect_error(optimizer_apply(opt, "a", 1), "grads")
  expect_error(optimizer_apply(opt, c(1, 2), 1), "grads")
  expect_error(optimizer_apply(opt, matrix(1, 2, 2), matrix(1, 4, 1)), "grads")
  expect_error(optimizer_apply(opt, 1, list(a = 1)), "grads")
  expect_error(optimizer_apply(opt, list(a = 1), list(a = 1, b = 2)), "grads")
  expect_error(optimizer_apply(opt, list(b = 1), list(a = 1)), "grads")
  expect_error(optimizer_apply(opt, list(a = "x"), list(a = 1)), "grads")
  expect_error(optimizer_apply(opt, list(a = 1), list(a = "x")), "params")
  expect_error(optimizer_apply(opt, list(), list()), "params")
  expect_error(optimizer_apply(opt, 1, 1, dtype = "float8"), "dtype")
  expect_error(optimizer_apply(opt, 1, 1, dtype = NA), "dtype")
  expect_error(optimizer_apply(opt, 1, 1, foo = 2), "...", fixed = TRUE)
  # nothing reached the engine
  expect_false(opt$built)
})

test_that("errors only the engine detects come back as clean R errors", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop()
  w <- rmsprop_variable(1, name = "w")
  opt$build(list(w))
  e <- tryCatch(optimizer_apply(opt, 1, 1), error = identity)
  expect_s3_class(e, "rmsprop_engine_error")
  expect_match(conditionMessage(e), "already built")
  expect_false(grepl("py_last_error|Traceback|ValueError", conditionMessage(e)))
  expect_null(conditionCall(e))
})

test_that("engine methods given R values for variables say so R's way, 1-based", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop()
  message_of <- function(expr) {
    e <- tryCatch(expr, error = identity)
    expect_s3_class(e, "rmsprop_argument_error")
    conditionMessage(e)
  }
  needs <- "must be an engine variable from rmsprop_variable()"
  expect_identical(message_of(opt$build(list(1))), paste0("`variables[[1]]` ", needs, "; got 1."))
  w <- rmsprop_variable(c(1, 2), name = "w")
  expect_identical(message_of(opt$build(list(w, "a"))),
                   paste0("`variables[[2]]` ", needs, "; got \"a\"."))
  # an R array reaches the engine as a read-only NumPy array: R's advice,
  # not Python's (np.array(x))
  expect_identical(message_of(opt$build(list(w, matrix(1, 2, 2)))),
                   paste0("`variables[[2]]` ", needs, "; got a numeric array of dim c(2, 2)."))
  expect_identical(message_of(opt$apply(list(1), list(1))),
                   paste0("`trainable_variables[[1]]` ", needs, "; got 1."))
  expect_identical(message_of(opt$apply_gradients(list(list(1, 2)))),
                   paste0("`grads_and_vars[[1]][[2]]` ", needs, "; got 2."))
  expect_identical(message_of(opt$build(1)), "`variables` must be a list of variables; got 1.")
  expect_identical(message_of(opt$build(list(w, w))),
                   paste("`variables[[2]]` must be a variable not listed before it (each",
                         "variable once); got the engine variable 'w'."))
  expect_false(opt$built)
  opt$build(list(w))
  expect_identical(message_of(opt$apply(list(c(1, 1)), list(rmsprop_variable(c(1, 2), name = "x")))),
                   paste("`trainable_variables[[1]]` must be a variable optimizer 'rmsprop' is",
                         "built on; got the engine variable 'x'."))
  expect_identical(opt$iterations, 0L)
  expect_identical(as.numeric(w), c(1, 2))
})

test_that("a learning-rate function returning a bad rate is refused before the step", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop(learning_rate = function() NA)
  e <- tryCatch(optimizer_apply(opt, c(1, 2), c(1, 2)), error = identity)
  expect_s3_class(e, "rmsprop_argument_error")
  expect_identical(conditionMessage(e), paste(
    "`learning_rate` must be a function returning a finite number >= 0;",
    "got NA, which it returned."))
  expect_identical(opt$iterations, 0L)
  sched <- optimizer_rmsprop(learning_rate = learning_rate_schedule(function(step) -0.1))
  e <- tryCatch(optimizer_apply(sched, c(1, 2), c(1, 2)), error = identity)
  expect_identical(conditionMessage(e), paste(
    "`learning_rate` must be a schedule returning a finite number >= 0;",
    "got -0.1, which it returned at step 0."))
  expect_identical(sched$iterations, 0L)
})

test_that("checkpoint functions reject bad input", {
  skip_if_no_engine()
  expect_error(save_optimizer(1, tempfile()), "optimizer")
  expect_error(save_optimizer(optimizer_rmsprop(), 1), "path")
  expect_error(save_optimizer(optimizer_rmsprop(), file.path(tempfile(), "x.npz")), "path")
  expect_error(load_optimizer(tempfile()), "path")
  expect_error(load_optimizer(NA_character_), "path")
  junk <- tempfile()
  writeLines("not a checkpoint", junk)
  e <- tryCatch(load_optimizer(junk), error = identity)
  expect_s3_class(e, "rmsprop_engine_error")
  expect_match(conditionMessage(e), "checkpoint")
  expect_error(save_optimizer(optimizer_rmsprop(learning_rate = function() 0.1), tempfile()),
               "function")
})

test_that("values the float policy cannot hold are refused, naming the argument", {
  skip_if_no_engine()
  # 1e39 is inf in float32 and a loss scale factor of 1e-40 is subnormal: the
  # engine refuses both at construction (one check, in Python).
  e <- tryCatch(optimizer_rmsprop(learning_rate = 1e39), error = identity)
  expect_s3_class(e, "rmsprop_error")
  expect_match(conditionMessage(e), "learning_rate", fixed = TRUE)
  expect_match(conditionMessage(e), "float32", fixed = TRUE)
  expect_error(optimizer_rmsprop(loss_scale_factor = 1e-40), "loss_scale_factor", fixed = TRUE)
  expect_error(optimizer_rmsprop(epsilon = 1e-50), "epsilon", fixed = TRUE)
  expect_error(optimizer_loss_scale(optimizer_rmsprop(), initial_scale = 1e39), "initial_scale",
               fixed = TRUE)
})

test_that("argument errors have one style and show values as R writes them", {
  skip_if_no_engine()
  here <- environment()
  message_of <- function(call) {
    e <- tryCatch(eval(call, here), error = identity)
    expect_s3_class(e, "rmsprop_argument_error")
    conditionMessage(e)
  }
  opt <- optimizer_rmsprop()
  sched <- learning_rate_schedule_exponential_decay(0.1, 10, 0.5)
  cases <- list(
    list(quote(optimizer_rmsprop(rho = NA)), "`rho` must be a finite number; got NA."),
    list(quote(optimizer_rmsprop(rho = NaN)), "`rho` must be a finite number; got NaN."),
    list(quote(optimizer_rmsprop(epsilon = -Inf)), "`epsilon` must be a finite number; got -Inf."),
    list(quote(optimizer_rmsprop(rho = NULL)), "`rho` must be a number; got NULL."),
    list(quote(optimizer_rmsprop(rho = "a")), "`rho` must be a number; got \"a\"."),
    list(quote(optimizer_rmsprop(rho = c(0.5, 0.6))), "`rho` must be a number; got c(0.5, 0.6)."),
    list(quote(optimizer_rmsprop(momentum = -1)), "`momentum` must be >= 0; got -1."),
    list(quote(optimizer_rmsprop(centered = 1)), "`centered` must be TRUE or FALSE; got 1."),
    list(quote(optimizer_rmsprop(use_ema = NA)), "`use_ema` must be TRUE or FALSE; got NA."),
    list(quote(optimizer_rmsprop(name = NA_character_)), "`name` must be a non-empty string; got NA."),
    list(quote(optimizer_rmsprop(ema_overwrite_frequency = 2.5)),
         "`ema_overwrite_frequency` must be an integer; got 2.5."),
    list(quote(optimizer_rmsprop(gradient_accumulation_steps = 1)),
         "`gradient_accumulation_steps` must be an integer >= 2; got 1."),
    list(quote(optimizer_rmsprop(learning_rate = factor("a"))),
         "`learning_rate` must be a number, a schedule or a function; got a factor of length 1."),
    list(quote(optimizer_rmsprop(learning_rate = data.frame(a = 1))),
         "`learning_rate` must be a number, a schedule or a function; got a data frame with 1 column."),
    list(quote(optimizer_rmsprop(learning_rate = 1e39)),
         paste0("`learning_rate` must be representable in float32, the float type the optimizer ",
                "computes in (largest: 3.4028234663852886e+38); got 1e+39, which is inf in float32.")),
    list(quote(optimizer_loss_scale(1)),
         "`inner_optimizer` must be an optimizer such as optimizer_rmsprop(); got 1."),
    list(quote(learning_rate_schedule_exponential_decay(0.1, 10, 0.5, staircase = NA)),
         "`staircase` must be TRUE or FALSE; got NA."),
    list(quote(learning_rate_schedule_piecewise_constant_decay(10, c(1, NA))),
         "`values` must be finite real numbers; got c(1, NA)."),
    list(quote(learning_rate_schedule_piecewise_constant_decay(c(10, 5), c(1, 2, 3))),
         "`boundaries` must be in increasing order; got c(10, 5)."),
    list(quote(sched(NA)), "`step` must be finite; got NA."),
    list(quote(rmsprop_variable(1, name = NA)), "`name` must be a non-empty string; got NA."),
    # `$<-` and methods called with `$`
    list(quote(opt$rho <- NA), "`rho` must be a finite number; got NA."),
    list(quote(opt$centered <- "yes"), "`centered` must be TRUE or FALSE; got \"yes\"."),
    list(quote(opt$exclude_from_weight_decay(var_names = NA)),
         "`var_names` must be a string or a list of strings; got NA.")
  )
  for (case in cases) expect_identical(message_of(case[[1]]), case[[2]], info = deparse(case[[1]]))
  # the same checks in Python write Python's values
  rm <- py_rmsprop()
  e <- tryCatch(rm$RMSprop(rho = NaN), python.builtin.ValueError = identity)
  expect_identical(rmsprop:::python_message(e), "`rho` must be a finite number; got nan.")
})
