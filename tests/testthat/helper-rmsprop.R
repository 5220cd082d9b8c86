# Python, NumPy and the engine are part of this project's setup: tests skip
# only when they are absent.
skip_if_no_engine <- function() {
  testthat::skip_if_not(rmsprop::engine_available(), "the rmsprop Python engine is not available")
}

py_rmsprop <- function() reticulate::import("rmsprop")

# TRUE when both optimizers' get_config() are equal in Python, value types too
same_py_config <- function(a, b) {
  check <- reticulate::py_eval(paste(
    "lambda a, b: (lambda x, y: x == y and all(type(x[k]) is type(y[k]) for k in x))",
    "(a.get_config(), b.get_config())"))
  isTRUE(check(a, b))
}

# Plain-R RMSprop (float64), to check optimizer_apply against.
r_rmsprop <- function(params, grads_list, lr, rho = 0.9, momentum = 0, epsilon = 1e-7,
                      centered = FALSE) {
  v <- mg <- m <- params * 0
  for (g in grads_list) {
    v <- rho * v + (1 - rho) * g^2
    denominator <- if (centered) {
      mg <- rho * mg + (1 - rho) * g
      v - mg^2 + epsilon
    } else {
      v + epsilon
    }
    increment <- lr * g / sqrt(denominator)
    if (momentum > 0) {
      m <- momentum * m + increment
      params <- params - m
    } else {
      params <- params - increment
    }
  }
  params
}

# Run R code in a fresh Rscript started in an empty temporary directory (no
# .venv there), with the given environment variables set (`env`, a named
# character vector) and unset (`unset`); stdout and stderr together, as one
# string.
fresh_rscript <- function(code, env = character(), unset = character()) {
  dir <- tempfile("rmsprop-fresh-")
  dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE), add = TRUE)
  old <- setwd(dir)
  on.exit(setwd(old), add = TRUE)
  rscript <- file.path(R.home("bin"), "Rscript")
  args <- c(if (length(unset)) as.vector(rbind("-u", unset)),
            if (length(env)) paste0(names(env), "=", env),
            rscript, "-e", shQuote(code))
  out <- suppressWarnings(system2("env", args, stdout = TRUE, stderr = TRUE))
  paste(out, collapse = "\n")
}

# Debian's Python: NumPy, but not the engine (the package brings its own).
system_python <- function() {
  python <- "/usr/bin/python3"
  testthat::skip_if_not(file.exists(python), "no /usr/bin/python3")
  has <- function(module) {
    system2(python, c("-c", shQuote(paste("import", module))), stdout = FALSE, stderr = FALSE) == 0
  }
  testthat::skip_if_not(has("numpy"), "/usr/bin/python3 has no NumPy")
  testthat::skip_if(has("rmsprop"), "/usr/bin/python3 has the engine itself")
  python
}
