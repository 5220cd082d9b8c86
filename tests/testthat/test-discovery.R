# Issue 12 §3: whatever exported function comes first in a session, the
# package chooses its Python before reticulate does.
#
# Each exported function is the first call of a fresh Rscript started in an
# empty directory (no .venv), with RMSPROP_PYTHON naming Debian's Python and
# RETICULATE_PYTHON naming another interpreter: had the function let
# reticulate start before the package chose, reticulate would have taken
# RETICULATE_PYTHON's.

# One valid first call per export (code run after `library(rmsprop)`).
# A new export must be added here: the test fails for any export missing.
first_calls <- c(
  engine_available = "engine_available()",
  rmsprop_python_config = "rmsprop_python_config()",
  optimizer_rmsprop = "optimizer_rmsprop(learning_rate = function() 0.01)",
  optimizer_loss_scale = "optimizer_loss_scale(optimizer_rmsprop())",
  optimizer_apply = "optimizer_apply(optimizer_rmsprop(), list(w = 1), list(w = 2))",
  optimizer_finalize = paste0("optimizer_finalize(local({o <- optimizer_rmsprop(use_ema = TRUE); ",
                              "optimizer_apply(o, 1, 2); o}), 2)"),
  rmsprop_minimize = "rmsprop_minimize(1, function(p) p^2, function(p) 2 * p, control = list(maxit = 2))",
  rmsprop_variable = "rmsprop_variable(c(1, 2), name = 'w')",
  save_optimizer = "save_optimizer(optimizer_rmsprop(), tempfile(fileext = '.npz'))",
  load_optimizer = "load_optimizer(Sys.getenv('RMSPROP_TEST_CHECKPOINT'))",
  learning_rate_schedule = "learning_rate_schedule(function(step) 0.1 / (1 + step))",
  learning_rate_schedule_exponential_decay = "learning_rate_schedule_exponential_decay(0.1, 10, 0.5)",
  learning_rate_schedule_inverse_time_decay = "learning_rate_schedule_inverse_time_decay(0.1, 10, 0.5)",
  learning_rate_schedule_piecewise_constant_decay =
    "learning_rate_schedule_piecewise_constant_decay(c(10, 20), c(0.1, 0.01, 0.001))",
  learning_rate_schedule_polynomial_decay = "learning_rate_schedule_polynomial_decay(0.1, 100)",
  learning_rate_schedule_cosine_decay = "learning_rate_schedule_cosine_decay(0.1, 100)",
  learning_rate_schedule_cosine_decay_restarts = "learning_rate_schedule_cosine_decay_restarts(0.1, 100)"
)

test_that("every export is the first call of a session in the discovery test", {
  exports <- sort(getNamespaceExports("rmsprop"))
  expect_identical(setdiff(exports, names(first_calls)), character(0))
})

test_that("each exported function, called first, initialises the package's Python", {
  skip_if_no_engine()
  python <- system_python()
  other <- rmsprop_python_config()$python
  skip_if(identical(other, python), "the tests run on /usr/bin/python3")
  checkpoint <- tempfile(fileext = ".npz")
  on.exit(unlink(checkpoint))
  save_optimizer(optimizer_rmsprop(), checkpoint)
  calls <- first_calls[intersect(names(first_calls), getNamespaceExports("rmsprop"))]
  run <- function(name) {
    fresh_rscript(paste(
      "suppressPackageStartupMessages(library(rmsprop))",
      sprintf("value <- tryCatch({%s; 'ok'}, error = conditionMessage)", calls[[name]]),
      "cat('RESULT', value, '\\n')",
      "cat('PYTHON', reticulate::py_config()$python, '\\n')", sep = "\n"),
      env = c(RMSPROP_PYTHON = python, RETICULATE_PYTHON = other,
              RMSPROP_TEST_CHECKPOINT = checkpoint))
  }
  cores <- if (.Platform$OS.type == "unix") 2L else 1L  # R CMD check --as-cran allows 2
  outputs <- parallel::mclapply(names(calls), run, mc.cores = cores)
  names(outputs) <- names(calls)
  for (name in names(calls)) {
    out <- outputs[[name]]
    expect_match(out, "RESULT ok", fixed = TRUE, info = paste(name, out))
    expect_match(out, paste("PYTHON", python), fixed = TRUE, info = paste(name, out))
  }
})
