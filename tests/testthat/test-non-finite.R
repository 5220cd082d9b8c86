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

test_that("non-finite values in long vectors and arrays are found, at their position", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop()
  params <- list(w = rep(1, 300), m = matrix(1, 10, 20))
  grads <- list(w = rep(0.5, 300), m = matrix(0.5, 10, 20))
  params <- optimizer_apply(opt, grads, params)
  before <- lapply(opt$variables, as.array)
  bad <- grads
  bad$w[277] <- NaN
  expect_error(optimizer_apply(opt, bad, params), "grads$w contains NaN at [277]", fixed = TRUE)
  bad <- grads
  bad$m[3, 17] <- -Inf
  expect_error(optimizer_apply(opt, bad, params), "grads$m contains -Inf at [3, 17]", fixed = TRUE)
  # a sum of finite values that overflows is not a non-finite value
  huge <- grads
  huge$w[1:2] <- .Machine$double.xmax
  expect_error(optimizer_apply(opt, huge, params), NA)
  params_bad <- params
  params_bad$w[300] <- NA
  expect_error(optimizer_apply(opt, grads, params_bad), "params$w contains NA at [300]",
               fixed = TRUE)
  expect_identical(opt$iterations, 2L)
  expect_false(identical(lapply(opt$variables, as.array), before))
})

test_that("a non-finite result passed back is refused as a parameter", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop(epsilon = 0)
  expect_warning(p <- optimizer_apply(opt, c(0, rep(1, 99)), rep(1, 100)),
                 class = "rmsprop_non_finite_warning")
  expect_true(is.nan(p[1]))
  expect_error(optimizer_apply(opt, rep(1, 100), p), "params contains NaN at [1]", fixed = TRUE)
  expect_identical(opt$iterations, 1L)
  short <- optimizer_rmsprop(epsilon = 0)
  expect_warning(q <- optimizer_apply(short, list(w = c(1, 0)), list(w = c(1, 1))),
                 class = "rmsprop_non_finite_warning")
  expect_error(optimizer_apply(short, list(w = c(1, 1)), q), "params$w contains NaN at [2]",
               fixed = TRUE)
})

test_that("a finite value too large for dtype float32/float16 is an error, not Inf", {
  skip_if_no_engine()
  # (Keras would cast it to Inf silently, and the parameter would end Inf)
  fits <- "(the optimizer was not changed)."
  expect_error(optimizer_apply(optimizer_rmsprop(), c(1, 1), c(1e39, 1), dtype = "float32"),
               paste("params contains 1e+39 at [1], which is Inf in float32 (largest:",
                     "3.4028234663852886e+38); parameters must fit in `dtype`", fits),
               fixed = TRUE, class = "rmsprop_argument_error")
  expect_error(optimizer_apply(optimizer_rmsprop(), c(1L, 1L), c(1L, 100000L), dtype = "float16"),
               paste("params contains 100000 at [2], which is Inf in float16 (largest: 65504);",
                     "parameters must fit in `dtype`", fits),
               fixed = TRUE, class = "rmsprop_argument_error")
  opt <- optimizer_rmsprop(use_ema = TRUE)
  params <- list(w = matrix(1, 2, 2), b = 0)
  grads <- list(w = matrix(0.5, 2, 2), b = 1)
  params <- optimizer_apply(opt, grads, params, dtype = "float32")
  before <- lapply(opt$variables, as.array)
  finalized <- optimizer_finalize(opt, params)
  # a gradient too (a finite double that is Inf in float32)
  expect_error(optimizer_apply(opt, list(w = matrix(c(1, -1e39, 1, 1e40), 2), b = 1), params,
                               dtype = "float32"),
               paste("grads$w contains -1e+39 at [2, 1] (and 1 more such value), which is Inf",
                     "in float32 (largest: 3.4028234663852886e+38); gradients must fit in",
                     "`dtype`", fits),
               fixed = TRUE, class = "rmsprop_argument_error")
  expect_error(optimizer_apply(opt, grads, list(w = matrix(1, 2, 2), b = 4e38), dtype = "float32"),
               "params$b contains 4e+38 at [1]", fixed = TRUE, class = "rmsprop_argument_error")
  # nothing changed: the state, the iterations, the values trained
  expect_identical(lapply(opt$variables, as.array), before)
  expect_identical(opt$iterations, 1L)
  expect_identical(optimizer_finalize(opt, params), finalized)
  # found in any part of a long vector or array, at R's position
  long <- numeric(100000)
  long[c(70000, 90000)] <- 1e39
  expect_error(optimizer_apply(optimizer_rmsprop(), numeric(100000), long, dtype = "float32"),
               "params contains 1e+39 at [70000] (and 1 more such value),", fixed = TRUE)
  long[99999] <- -1e39
  expect_error(optimizer_apply(optimizer_rmsprop(), numeric(100000), long, dtype = "float32"),
               "params contains 1e+39 at [70000] (and 2 more such values),", fixed = TRUE)
  dim(long) <- c(1000, 100)
  expect_error(optimizer_apply(optimizer_rmsprop(), long * 0, long, dtype = "float32"),
               "params contains 1e+39 at [1000, 70] (and 2 more such values)", fixed = TRUE)
  # the largest float32 and what rounds to it are fine
  largest <- 3.4028234663852886e+38
  expect_identical(optimizer_apply(optimizer_rmsprop(learning_rate = 0), 1,
                                   largest * (1 + 2^-25), dtype = "float32"), largest)
})

test_that("under loss scaling, a gradient too large for float32 skips the step", {
  skip_if_no_engine()
  opt <- optimizer_loss_scale(optimizer_rmsprop(), initial_scale = 8)
  expect_identical(optimizer_apply(opt, c(1e39, 1), c(1, 1), dtype = "float32"), c(1, 1))
  expect_identical(opt$dynamic_scale, 4)
  expect_identical(opt$iterations, 0L)
  expect_error(optimizer_apply(opt, c(1, 1), c(1e39, 1), dtype = "float32"),
               "params contains 1e+39 at [1]", fixed = TRUE)
})
