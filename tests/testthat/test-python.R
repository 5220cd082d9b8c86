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

test_that("a Python with NumPy but without the engine uses the bundled engine", {
  python <- system_python()
  out <- fresh_rscript(paste(
    "library(rmsprop)",
    "p <- optimizer_apply(optimizer_rmsprop(0.1), c(1, -2), c(0.5, 0.5))",
    "# one step from zero state moves each value by lr / sqrt(1 - rho)",
    "expected <- c(0.5, 0.5) - c(1, -1) * 0.1 / sqrt(0.1)",
    "cat('STEP', isTRUE(all.equal(p, expected, tolerance = 1e-6)), '\\n')",
    "config <- rmsprop_python_config()",
    "cat('PYTHON', config$python, '\\n')",
    "cat('BUNDLED', startsWith(normalizePath(config$engine_path),",
    "    normalizePath(system.file(package = 'rmsprop'))), '\\n')",
    sep = "\n"), env = c(RMSPROP_PYTHON = python))
  expect_match(out, "STEP TRUE", fixed = TRUE)
  expect_match(out, paste("PYTHON", python), fixed = TRUE)
  expect_match(out, "BUNDLED TRUE", fixed = TRUE)
})

test_that("an engine whose version is not the R package's is a clear error", {
  python <- system_python()
  fake <- tempfile("fake-engine-")
  dir.create(file.path(fake, "rmsprop"), recursive = TRUE)
  on.exit(unlink(fake, recursive = TRUE))
  writeLines('__version__ = "0.0.1"', file.path(fake, "rmsprop", "__init__.py"))
  out <- fresh_rscript(paste(
    "e <- tryCatch(rmsprop::optimizer_rmsprop(), error = identity)",
    "cat(class(e)[1], conditionMessage(e), sep = '\\n')", sep = "\n"),
    env = c(RMSPROP_PYTHON = python, PYTHONPATH = fake))
  expect_match(out, "rmsprop_python_error", fixed = TRUE)
  expect_match(out, "is version 0.0.1", fixed = TRUE)
  expect_match(out, paste("this R package is version", packageVersion("rmsprop")), fixed = TRUE)
})

test_that("a Python without NumPy is one clear R error", {
  # pyenv's interpreter on this machine's PATH has no NumPy; skip elsewhere
  python <- Sys.which("python3")
  skip_if(!nzchar(python) || startsWith(normalizePath(python), "/usr/"), "no non-system python3 on PATH")
  real <- suppressWarnings(system2(python, c("-c", shQuote("import sys; print(sys.executable)")),
                                   stdout = TRUE, stderr = FALSE))
  skip_if(!length(real) || !file.exists(real[[1]]), "python3 on PATH does not run")
  has_numpy <- system2(real[[1]], c("-c", shQuote("import numpy")), stdout = FALSE, stderr = FALSE) == 0
  skip_if(has_numpy, "python3 on PATH has NumPy")
  out <- fresh_rscript(paste(
    "e <- tryCatch(rmsprop::optimizer_rmsprop(), error = identity)",
    "cat(class(e)[1], conditionMessage(e), sep = '\\n')", sep = "\n"),
    env = c(RMSPROP_PYTHON = real[[1]]))
  expect_match(out, "rmsprop_python_error", fixed = TRUE)
  expect_match(out, "NumPy is not installed", fixed = TRUE)
  expect_false(grepl("Traceback", out))
})

test_that("engine_available() is FALSE and quiet when nothing names a Python", {
  out <- fresh_rscript("cat('AVAILABLE', rmsprop::engine_available(), '\\n')",
                       env = c(R_USER_CONFIG_DIR = tempfile("no-config-")),
                       unset = c("RETICULATE_PYTHON", "RMSPROP_PYTHON", "VIRTUAL_ENV"))
  expect_identical(out, "AVAILABLE FALSE ")
})

test_that("errors tell the truth when reticulate already runs another Python", {
  python <- system_python()
  venv <- rmsprop_python_config()$python
  skip_if(identical(venv, python), "the tests run on /usr/bin/python3")
  out <- fresh_rscript(paste(
    sprintf("reticulate::use_python('%s', required = TRUE)", venv),
    "invisible(reticulate::import('sys'))",
    "config <- rmsprop::rmsprop_python_config()",
    "cat('PYTHON', config$python, '\\n')",
    "cat('SOURCE', config$source, '\\n')", sep = "\n"),
    env = c(RMSPROP_PYTHON = python))
  expect_match(out, paste("PYTHON", venv), fixed = TRUE)
  expect_match(out, "SOURCE reticulate, already initialized in this session", fixed = TRUE)
  expect_match(out, paste("environment variable RMSPROP_PYTHON names", python), fixed = TRUE)
})
