test_that("engine objects carry stable R classes, also when read back with $", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop()
  expect_identical(class(opt)[1:2], c("rmsprop_optimizer", "rmsprop_object"))
  scaled <- optimizer_loss_scale(opt)
  expect_identical(class(scaled)[1:2], c("rmsprop_loss_scale_optimizer", "rmsprop_object"))
  expect_s3_class(scaled$inner_optimizer, "rmsprop_optimizer")
  sched <- learning_rate_schedule_exponential_decay(0.1, 10, 0.5)
  expect_s3_class(sched, "rmsprop_schedule")
  expect_s3_class(learning_rate_schedule(function(step) 1), "rmsprop_schedule")
  expect_s3_class(rmsprop_variable(1), "rmsprop_variable")
  expect_s3_class(opt$variables[[1]], "rmsprop_variable")
  path <- tempfile(fileext = ".npz")
  on.exit(unlink(path))
  save_optimizer(scaled, path)
  expect_s3_class(load_optimizer(path), "rmsprop_loss_scale_optimizer")
  # an optimizer made in Python is accepted, and gets its R class
  py_opt <- py_rmsprop()$RMSprop()
  expect_false(inherits(py_opt, "rmsprop_optimizer"))
  expect_length(optimizer_apply(py_opt, 1, 1), 1)
  expect_s3_class(optimizer_loss_scale(py_opt), "rmsprop_loss_scale_optimizer")
})

test_that("the package's R code and NAMESPACE never name Python module paths", {
  root <- testthat::test_path("..", "..")
  skip_if_not(dir.exists(file.path(root, "R")), "the package sources are not here")
  files <- c(list.files(file.path(root, "R"), full.names = TRUE), file.path(root, "NAMESPACE"))
  text <- unlist(lapply(files, readLines))
  code <- sub("#.*$", "", text)
  expect_false(any(grepl("rmsprop\\.(rmsprop_optimizer|base_optimizer|loss_scale|schedules|variable)\\b",
                         code)))
})

test_that("state reads as R numbers", {
  skip_if_no_engine()
  opt <- optimizer_loss_scale(optimizer_rmsprop(), initial_scale = 8)
  expect_identical(opt$dynamic_scale, 8)
  expect_identical(opt$step_counter, 0)
  optimizer_apply(opt, c(8, Inf), c(1, 1))
  expect_identical(opt$dynamic_scale, 4)
  expect_identical(opt$iterations, 0L)
  expect_type(opt$learning_rate, "double")
})

test_that("variables behave like the R arrays they hold", {
  skip_if_no_engine()
  m <- matrix(c(1, 2, 3, 4, 5, 6), 2, 3)
  w <- rmsprop_variable(m, dtype = "float64", name = "w")
  expect_identical(dim(w), c(2L, 3L))
  expect_identical(length(w), 6L)
  expect_identical(as.array(w), m)
  expect_identical(summary(w), summary(as.vector(m)))
  expect_output(str(w), "rmsprop_variable 'w'.*float64.*num \\[1:2, 1:3\\]")
  expect_output(print(w), "dim 2 x 3")
  s <- rmsprop_variable(2, dtype = "float64")
  expect_null(dim(s))
  expect_identical(length(s), 1L)
  expect_identical(as.array(s), 2)
  expect_identical(dim(rmsprop_variable(c(1, 2, 3))), 3L)
})

test_that("optimizers have str() and summary()", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop(learning_rate = 0.5, momentum = 0.9)
  optimizer_apply(opt, list(w = c(1, 1), b = 1), list(w = c(0, 0), b = 0))
  expect_output(str(opt), "<rmsprop_optimizer> 'rmsprop': learning_rate 0.5, 1 iterations, built")
  s <- summary(opt)
  expect_s3_class(s, "summary_rmsprop_optimizer")
  expect_identical(s$variables$name,
                   c("iteration", "learning_rate", "w_velocity", "b_velocity", "w_momentum",
                     "b_momentum"))
  expect_identical(s$variables$dim[3], "2")
  expect_output(print(s), "w_velocity")
  expect_output(str(optimizer_loss_scale(opt)), "rmsprop_loss_scale_optimizer")
  expect_identical(length(opt), 1L)
})

test_that("engine errors from $ methods are classed R errors without reticulate's hint", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop()
  e <- tryCatch(opt$build(list(1)), error = identity)
  expect_s3_class(e, "rmsprop_argument_error")
  expect_s3_class(e, "rmsprop_engine_error")
  expect_match(conditionMessage(e), "`variables[[1]]` must be", fixed = TRUE)
  expect_false(grepl("py_last_error|py_call_impl|Traceback", conditionMessage(e)))
  expect_null(conditionCall(e))
  e <- tryCatch(opt$no_such_method(), error = identity)
  expect_s3_class(e, "rmsprop_engine_error")
  expect_false(grepl("py_last_error", conditionMessage(e)))
})

test_that("engine warnings are R warnings", {
  skip_if_no_engine()
  w <- tryCatch(optimizer_rmsprop(decay = 0.1), warning = identity)
  expect_s3_class(w, "rmsprop_warning")
  expect_match(conditionMessage(w), "`decay` is not supported")
})

test_that("$<- refuses unknown fields and lets the engine check known ones", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop()
  e <- tryCatch(opt$learnig_rate <- 3, error = identity)
  expect_s3_class(e, "rmsprop_argument_error")
  expect_match(conditionMessage(e), "`learnig_rate` is not a field")
  expect_match(conditionMessage(e), "learning_rate")
  expect_error(opt$apply <- 1, "not a field")
  expect_error(opt$`_iterations` <- 1, "not a field")
  expect_false(reticulate::py_has_attr(opt, "learnig_rate"))
  opt$rho <- 0.5
  expect_identical(opt$rho, 0.5)
  expect_error(opt$learning_rate <- -1, "learning_rate", class = "rmsprop_argument_error")
  ls <- optimizer_loss_scale(optimizer_rmsprop())
  expect_error(ls$dynamic_scal <- 2, "not a field")
})

test_that("R converts types only: the engine's check reaches R, the value as R writes it", {
  skip_if_no_engine()
  py_message <- function(expr) {
    tryCatch(expr, python.builtin.Exception = function(e) rmsprop:::python_message(e))
  }
  rm <- py_rmsprop()
  e <- tryCatch(optimizer_rmsprop(rho = 2.5), error = identity)
  expect_s3_class(e, "rmsprop_argument_error")
  # the engine's requirement, the value as R prints it
  expect_identical(py_message(rm$RMSprop(rho = 2.5)), "`rho` must be in [0, 1]; got 2.5.")
  expect_identical(conditionMessage(e), "`rho` must be in [0, 1]; got 2.5.")
  e <- tryCatch(learning_rate_schedule_exponential_decay(0.1, 0, 0.5), error = identity)
  expect_identical(conditionMessage(e), py_message(rm$schedules$ExponentialDecay(0.1, 0L, 0.5)))
  # NA of every type is refused (reticulate alone would send TRUE, "NA" or -2^31)
  expect_error(optimizer_rmsprop(centered = NA), "centered", class = "rmsprop_argument_error")
  expect_error(optimizer_rmsprop(name = NA_character_), "name", class = "rmsprop_argument_error")
  expect_error(optimizer_rmsprop(ema_overwrite_frequency = NA_integer_), "ema_overwrite_frequency",
               class = "rmsprop_argument_error")
  # whole numbers of any size become Python ints
  opt <- optimizer_rmsprop(gradient_accumulation_steps = 1e12)
  expect_true(reticulate::py_eval("lambda o: o.gradient_accumulation_steps == 10**12")(opt))
  expect_identical(optimizer_rmsprop(gradient_accumulation_steps = 3)$gradient_accumulation_steps, 3L)
})

test_that("optimizer_apply() names list elements in its messages", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop()
  expect_error(optimizer_apply(opt, list(a = 1, b = 1), list(a = 1, b = NULL)),
               "`params$b` must be a numeric vector or array; got NULL.", fixed = TRUE)
  expect_error(optimizer_apply(opt, list(1, factor("x")), list(1, 2)),
               "`grads[[2]]` must be a numeric vector or array (or NULL); got a factor of length 1.",
               fixed = TRUE)
  expect_error(optimizer_apply(opt, data.frame(a = 1), 1), "got a data frame with 1 column",
               fixed = TRUE)
  expect_error(optimizer_apply(opt, list(w = c(1, 2)), list(w = 1)),
               "`grads$w` must have the shape of its parameter", fixed = TRUE)
})
