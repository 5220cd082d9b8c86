test_that("the recorded Python is read from R_user_dir()", {
  expect_identical(rmsprop:::recorded_python_file(),
                   file.path(tools::R_user_dir("rmsprop", "config"), "python"))
  old <- options(rmsprop.python = "/some/python")
  on.exit(options(old))
  expect_identical(rmsprop:::python_choice()$path, "/some/python")
  options(rmsprop.python = NULL)
  old_env <- Sys.getenv("RMSPROP_PYTHON", unset = NA)
  Sys.setenv(RMSPROP_PYTHON = "/other/python")
  on.exit(if (is.na(old_env)) Sys.unsetenv("RMSPROP_PYTHON") else Sys.setenv(RMSPROP_PYTHON = old_env),
          add = TRUE)
  expect_identical(rmsprop:::python_choice()$path, "/other/python")
})

test_that("engine_available() and rmsprop_python_config() report the engine", {
  skip_if_no_engine()
  expect_true(engine_available())
  config <- rmsprop_python_config()
  expect_true(file.exists(config$python))
  expect_type(config$engine, "character")
  expect_type(config$numpy, "character")
})

run_r <- function(code) {
  rscript <- file.path(R.home("bin"), "Rscript")
  out <- suppressWarnings(system2(rscript, c("-e", shQuote(code)), stdout = TRUE, stderr = TRUE))
  paste(out, collapse = "\n")
}

test_that("a missing Python is one clear R error of class rmsprop_python_error", {
  out <- run_r(paste(
    "options(rmsprop.python = '/nonexistent/bin/python');",
    "e <- tryCatch(rmsprop::optimizer_rmsprop(), error = identity);",
    "cat(class(e)[1], conditionMessage(e), sep = '\\n');",
    "cat('AVAILABLE', rmsprop::engine_available(), '\\n')"))
  expect_match(out, "rmsprop_python_error")
  expect_match(out, "/nonexistent/bin/python")
  expect_match(out, "make setup")
  expect_match(out, "rmsprop.python")
  expect_match(out, "AVAILABLE FALSE")
})

test_that("a Python without the engine is one clear R error", {
  python <- "/usr/bin/python3"
  skip_if_not(file.exists(python))
  has_engine <- system2(python, c("-c", shQuote("import rmsprop")), stdout = FALSE, stderr = FALSE)
  skip_if(has_engine == 0, "the system Python has the engine")
  out <- run_r(paste0(
    "options(rmsprop.python = '", python, "');",
    "e <- tryCatch(rmsprop::optimizer_rmsprop(), error = identity);",
    "cat(class(e)[1], conditionMessage(e), sep = '\\n')"))
  expect_match(out, "rmsprop_python_error")
  expect_match(out, "engine|NumPy")
  expect_false(grepl("Traceback", out))
})
