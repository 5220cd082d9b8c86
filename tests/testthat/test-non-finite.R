test_that("NA, NaN and Inf in params or grads are errors naming element and position", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop(use_ema = TRUE)
  params <- list(w = c(1, 2, 3), b = matrix(1, 2, 2))
  params <- optimizer_apply(opt, list(w = c(1, 1, 1), b = matrix(1, 2, 2)), params)
  before <- lapply(opt$variables, as.array)
  e <- tryCatch(optimizer_apply(opt, list(w = c(1, 1, NA), b = matrix(1, 2, 2)), params),
                error = identity)
  expect_s3_class(e, "rmsprop_argument_error")
  expect_match(conditionMessage(e), "grads$w contains NA at [3]", fixed = TRUE)
  expect_error(optimizer_apply(opt, list(w = c(1, 1, 1), b = matrix(c(1, 1, NaN, 1), 2, 2)), params),
               "grads$b contains NaN at [1, 2]", fixed = TRUE)
  expect_error(optimizer_apply(opt, list(w = c(1, Inf, -Inf), b = matrix(1, 2, 2)), params),
               "grads$w contains Inf at [2] (and 1 more non-finite values)", fixed = TRUE)
  bad <- params
  bad$w[1] <- NA
  expect_error(optimizer_apply(opt, list(w = c(1, 1, 1), b = matrix(1, 2, 2)), bad),
               "params$w contains NA at [1]", fixed = TRUE)
  expect_error(optimizer_apply(optimizer_rmsprop(), NA_integer_, 1L), "grads contains NA at [1]",
               fixed = TRUE)
  expect_error(optimizer_apply(optimizer_rmsprop(), 1, c(0, -Inf)), "grads", fixed = TRUE)
  # nothing changed: the state, the iterations, the EMA
  expect_identical(lapply(opt$variables, as.array), before)
  expect_identical(opt$iterations, 1L)
})

test_that("under loss scaling, non-finite gradients still skip the step", {
  skip_if_no_engine()
  opt <- optimizer_loss_scale(optimizer_rmsprop(), initial_scale = 4)
  p <- optimizer_apply(opt, c(NA, 1), c(1, 1))
  expect_identical(p, c(1, 1))
  expect_identical(opt$dynamic_scale, 2)
  expect_error(optimizer_apply(opt, c(1, 1), c(NaN, 1)), "params contains NaN at [1]", fixed = TRUE)
})

test_that("a non-finite value made by the engine is an R warning naming the parameter", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop(epsilon = 0)
  w <- tryCatch(optimizer_apply(opt, list(w = c(0, 1)), list(w = c(1, 1))), warning = identity)
  expect_s3_class(w, "rmsprop_warning")
  expect_match(conditionMessage(w), "parameter 'w' non-finite (NaN at [1])", fixed = TRUE)
})

test_that("NumPy's RuntimeWarning text never reaches R's console", {
  skip_if_no_engine()
  rscript <- file.path(R.home("bin"), "Rscript")
  code <- paste(
    "library(rmsprop);",
    "w <- tryCatch(optimizer_apply(optimizer_rmsprop(epsilon = 0), c(0, 1), c(1, 1)),",
    "              warning = function(w) conditionMessage(w));",
    "cat('R WARNING:', w, '\\n')")
  out <- paste(suppressWarnings(system2(rscript, c("-e", shQuote(code)), stdout = TRUE,
                                        stderr = TRUE)), collapse = "\n")
  expect_match(out, "R WARNING: The update made parameter 'param_1' non-finite", fixed = TRUE)
  expect_false(grepl("RuntimeWarning|invalid value encountered", out))
})
