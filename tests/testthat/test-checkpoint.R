test_that("a checkpoint saved in R resumes bit-identically in R", {
  skip_if_no_engine()
  set.seed(1)
  grads <- replicate(10, list(w = matrix(rnorm(6), 2, 3), b = rnorm(1)), simplify = FALSE)
  params <- list(w = matrix(0, 2, 3), b = 1)
  a <- optimizer_rmsprop(learning_rate = 0.05, momentum = 0.9, centered = TRUE, use_ema = TRUE,
                         ema_overwrite_frequency = 3)
  for (g in grads[1:5]) params <- optimizer_apply(a, g, params)
  path <- file.path(tempdir(), "opt.npz")
  expect_identical(save_optimizer(a, path), normalizePath(path))
  expect_true(file.exists(path))
  pa <- pb <- params
  for (g in grads[6:10]) pa <- optimizer_apply(a, g, pa)
  b <- load_optimizer(path)
  expect_s3_class(b, "rmsprop_optimizer")
  for (g in grads[6:10]) pb <- optimizer_apply(b, g, pb)
  expect_identical(pa, pb)
  expect_identical(a$iterations, b$iterations)
  expect_identical(b$iterations, 10L)
  unlink(path)
})

test_that("checkpoints are Python's: loss-scale, float32, schedules, ~ paths", {
  skip_if_no_engine()
  sch <- learning_rate_schedule_cosine_decay(0.1, 20)
  a <- optimizer_loss_scale(optimizer_rmsprop(learning_rate = sch), initial_scale = 4)
  p <- c(1, 2, 3)
  for (i in 1:3) p <- optimizer_apply(a, c(1, -1, 0.5) * i, p, dtype = "float32")
  path <- tempfile(fileext = ".npz")
  save_optimizer(a, path)
  py_loaded <- py_rmsprop()$load_optimizer(path)
  expect_identical(py_loaded$get_config(), a$get_config())
  b <- load_optimizer(path)
  expect_s3_class(b, "rmsprop_loss_scale_optimizer")
  expect_identical(optimizer_apply(a, c(1, 1, 1), p, dtype = "float32"),
                   optimizer_apply(b, c(1, 1, 1), p, dtype = "float32"))
  # a file written by Python loads in R
  py_path <- tempfile(fileext = ".npz")
  py_rmsprop()$save_optimizer(py_rmsprop()$RMSprop(rho = 0.5), py_path)
  expect_identical(load_optimizer(py_path)$get_config()$rho, 0.5)
  unlink(c(path, py_path))
  # ~ is expanded
  home <- path.expand("~")
  skip_if_not(dir.exists(home) && file.access(home, 2) == 0, "home is not writable")
  rel <- file.path("~", basename(tempfile("rmsprop-test-", fileext = ".npz")))
  on.exit(unlink(path.expand(rel)), add = TRUE)
  save_optimizer(optimizer_rmsprop(), rel)
  expect_true(file.exists(path.expand(rel)))
  expect_s3_class(load_optimizer(rel), "rmsprop_optimizer")
})

test_that("a user's Python schedule loads only through custom_objects", {
  skip_if_no_engine()
  main <- reticulate::py_run_string(paste(
    "import rmsprop",
    "class Halving(rmsprop.schedules.LearningRateSchedule):",
    "    def __init__(self, start):",
    "        self.start = start",
    "    def __call__(self, step):",
    "        return self.start * 0.5 ** int(step)",
    "    def get_config(self):",
    "        return {'start': self.start}",
    sep = "\n"), convert = FALSE)
  halving <- main$Halving
  opt <- optimizer_rmsprop(learning_rate = halving(0.5))
  p <- optimizer_apply(opt, c(1, 1), c(0, 0))
  path <- tempfile(fileext = ".npz")
  on.exit(unlink(path), add = TRUE)
  save_optimizer(opt, path)
  expect_error(load_optimizer(path), "Halving.*custom_objects", class = "rmsprop_engine_error")
  loaded <- load_optimizer(path, custom_objects = list(Halving = halving))
  expect_identical(optimizer_apply(opt, c(1, 2), p), optimizer_apply(loaded, c(1, 2), p))
  expect_error(load_optimizer(path, custom_objects = list(halving)), "custom_objects",
               class = "rmsprop_argument_error")
  expect_error(load_optimizer(path, custom_objects = "Halving"), "custom_objects",
               class = "rmsprop_argument_error")
})

test_that("a damaged file is an rmsprop_checkpoint_error naming file and field", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop(momentum = 0.5)
  p <- optimizer_apply(opt, c(a = 1, b = 2), c(a = 0, b = 0))
  path <- tempfile(fileext = ".ckpt")
  on.exit(unlink(path), add = TRUE)
  save_optimizer(opt, path)
  bytes <- readBin(path, "raw", file.size(path))
  writeBin(bytes[seq_len(length(bytes) - 40L)], path)
  e <- tryCatch(load_optimizer(path), error = identity)
  expect_s3_class(e, "rmsprop_checkpoint_error")
  expect_match(conditionMessage(e), basename(path), fixed = TRUE)
  expect_match(conditionMessage(e), "data")
  e <- tryCatch(load_optimizer(tempfile()), error = identity)
  expect_s3_class(e, "rmsprop_checkpoint_error")
  expect_error(load_optimizer(path, check_names = NA), "check_names",
               class = "rmsprop_argument_error")
})

test_that("variables renamed or swapped on resume are refused unless check_names = FALSE", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop(learning_rate = 0.1)
  p <- optimizer_apply(opt, list(a = 1, b = 2), list(a = 0, b = 0))
  path <- tempfile(fileext = ".ckpt")
  on.exit(unlink(path), add = TRUE)
  save_optimizer(opt, path)
  swapped <- load_optimizer(path)
  expect_error(optimizer_apply(swapped, list(b = 1, a = 1), list(b = 0, a = 0)),
               "named c(\"a\", \"b\"), but the optimizer is being built on c(\"b\", \"a\")",
               fixed = TRUE)
  # Opted out, the slots go by position: the first variable takes a's state.
  relaxed <- load_optimizer(path, check_names = FALSE)
  expect_identical(unname(optimizer_apply(relaxed, list(b = 1, a = 1), list(b = 0, a = 0))),
                   unname(optimizer_apply(opt, list(a = 1, b = 1), list(a = 0, b = 0))))
})

test_that("unnamed parameters are param_1, ... in both languages; others are refused in R's words", {
  skip_if_no_engine()
  path <- tempfile(fileext = ".ckpt")
  on.exit(unlink(path), add = TRUE)
  # saved by Python with its default names (none given) ...
  rm <- py_rmsprop()
  py_opt <- rm$RMSprop(learning_rate = 0.1)
  grads <- list(c(1, 2), c(3, 4))
  params <- list(c(0, 0), c(0, 0))
  rm$apply_to_values(py_opt, grads, params)
  rm$save_optimizer(py_opt, path)
  # ... resumed unnamed in R, continuing Python's run
  resumed <- load_optimizer(path)
  expect_identical(optimizer_apply(resumed, grads, params),
                   lapply(rm$apply_to_values(py_opt, grads, params), as.vector))
  # named parameters do not take the unnamed run's state; the message says
  # how, in R's words
  e <- tryCatch(optimizer_apply(load_optimizer(path), list(a = c(1, 2), b = c(3, 4)),
                                list(a = c(0, 0), b = c(0, 0))), error = identity)
  expect_s3_class(e, "rmsprop_engine_error")
  expect_match(conditionMessage(e), "c(\"param_1\", \"param_2\")", fixed = TRUE)
  expect_match(conditionMessage(e), "pass the saved names as list names", fixed = TRUE)
  expect_match(conditionMessage(e), "check_names = FALSE", fixed = TRUE)
})

test_that("an R function as learning rate is refused at save time, saying so", {
  skip_if_no_engine()
  path <- tempfile(fileext = ".ckpt")
  expect_error(save_optimizer(optimizer_rmsprop(learning_rate = function() 0.1), path),
               "learning_rate is an R function", class = "rmsprop_engine_error")
  expect_error(save_optimizer(optimizer_loss_scale(optimizer_rmsprop(
    learning_rate = function() 0.1)), path), "inner optimizer's learning_rate is an R function")
  expect_false(file.exists(path))
})
