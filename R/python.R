# Finding Python and the engine, lazily, on first use.
#
# Order: option `rmsprop.python`, env var `RMSPROP_PYTHON`, env var
# `RETICULATE_PYTHON` (left to reticulate), the path recorded by the source
# checkout's `make setup` in `tools::R_user_dir("rmsprop", "config")/python`,
# then whatever reticulate finds.

.rmsprop <- new.env(parent = emptyenv())

recorded_python_file <- function() {
  file.path(tools::R_user_dir("rmsprop", "config"), "python")
}

# list(path = <interpreter or NULL to let reticulate decide>, source = <text>)
python_choice <- function() {
  opt <- getOption("rmsprop.python")
  if (!is.null(opt)) {
    if (!is.character(opt) || length(opt) != 1L || is.na(opt) || !nzchar(opt)) {
      python_error(sprintf(paste0("Option `rmsprop.python` must be the path of a ",
                                  "Python interpreter; got %s."),
                           describe_value(opt)), "")
    }
    return(list(path = opt, source = "option `rmsprop.python`"))
  }
  env <- Sys.getenv("RMSPROP_PYTHON")
  if (nzchar(env)) return(list(path = env, source = "environment variable RMSPROP_PYTHON"))
  env <- Sys.getenv("RETICULATE_PYTHON")
  if (nzchar(env)) return(list(path = NULL, source = "environment variable RETICULATE_PYTHON"))
  file <- recorded_python_file()
  if (file.exists(file)) {
    path <- trimws(readLines(file, n = 1L, warn = FALSE))
    if (length(path) == 1L && nzchar(path)) {
      return(list(path = path, source = paste0("the path recorded by `make setup` in ", file)))
    }
  }
  list(path = NULL, source = "reticulate's default search")
}

python_fix_hint <- paste(
  "To fix: run `make setup` in the rmsprop source checkout (it creates .venv with NumPy",
  "and the engine, and records its Python for R), or install the engine into a Python",
  "with NumPy (`pip install rmsprop`) and point R at that interpreter with",
  "`options(rmsprop.python = \"/path/to/python\")` or the RMSPROP_PYTHON environment variable",
  "(in a new R session)."
)

python_error <- function(what, detail = "") {
  message <- paste0(what, if (nzchar(detail)) paste0("\n", detail) else "", "\n", python_fix_hint)
  rmsprop_abort(message, class = "rmsprop_python_error")
}

short_message <- function(e) {
  text <- if (inherits(e, "python.builtin.BaseException")) {
    python_message(e)
  } else {
    conditionMessage(e)
  }
  text <- sub("\nRun `reticulate::py_last_error\\(\\)` for details\\.?\\s*$", "", text)
  paste0("(", trimws(text), ")")
}

current_python <- function() {
  tryCatch(reticulate::py_config()$python, error = function(e) "<unknown>")
}

# Initialize Python (once), import the engine, cache what the hot paths need.
init_engine <- function() {
  choice <- python_choice()
  if (!reticulate::py_available(initialize = FALSE) && !is.null(choice$path)) {
    path <- path.expand(choice$path)
    if (!file.exists(path)) {
      python_error(sprintf("No usable Python: %s, named by %s, does not exist.",
                           path, choice$source))
    }
    # RETICULATE_PYTHON would win over use_python(); ours comes first.
    old <- Sys.getenv("RETICULATE_PYTHON", unset = NA)
    if (!is.na(old)) {
      Sys.unsetenv("RETICULATE_PYTHON")
      on.exit(Sys.setenv(RETICULATE_PYTHON = old), add = TRUE)
    }
    ok <- tryCatch({
      reticulate::use_python(path, required = TRUE)
      TRUE
    }, error = function(e) e)
    if (!isTRUE(ok)) {
      python_error(sprintf("No usable Python: %s (named by %s) cannot be used by reticulate.",
                           path, choice$source), short_message(ok))
    }
  }
  module <- tryCatch(reticulate::import("rmsprop", delay_load = FALSE), error = function(e) e)
  if (inherits(module, "error")) {
    if (!reticulate::py_available(initialize = FALSE)) {
      python_error(sprintf("No usable Python was found (looked at %s).", choice$source),
                   short_message(module))
    }
    python <- current_python()
    if (!reticulate::py_module_available("numpy")) {
      python_error(sprintf("NumPy is not installed in the Python R uses (%s, chosen by %s).",
                           python, choice$source))
    }
    python_error(sprintf(paste0("The rmsprop Python engine cannot be imported in the ",
                                "Python R uses (%s, chosen by %s)."),
                         python, choice$source), short_message(module))
  }
  numpy <- tryCatch(reticulate::import("numpy", delay_load = FALSE), error = function(e) e)
  if (inherits(numpy, "error")) {
    python_error(sprintf("NumPy is not usable in the Python R uses (%s).", current_python()),
                 short_message(numpy))
  }
  positional <- reticulate::import("rmsprop.positional", convert = FALSE)
  .rmsprop$apply_for_r <- reticulate::py_get_attr(positional, "apply_for_r")
  .rmsprop$source <- choice$source
  .rmsprop$module <- module
  module
}

# The engine module (reticulate, converting results to R).
engine <- function() {
  module <- .rmsprop$module
  if (is.null(module)) module <- init_engine()
  module
}

#' Is the Python engine available?
#'
#' `engine_available()` reports whether Python, NumPy and the rmsprop engine
#' can be used (initializing Python if needed), without raising an error.
#' `rmsprop_python_config()` tells which Python is used and why.
#'
#' Python is looked for, on first use, in this order: the option
#' `rmsprop.python`, the environment variable `RMSPROP_PYTHON`, the
#' environment variable `RETICULATE_PYTHON`, the interpreter recorded by
#' `make setup` of the source checkout (in the file `python` of
#' `tools::R_user_dir("rmsprop", "config")`), then whatever reticulate finds.
#'
#' @return `engine_available()`: `TRUE` or `FALSE`. `rmsprop_python_config()`:
#'   a list with `python` (the interpreter), `source` (why it was chosen),
#'   `engine` and `numpy` (their versions); it raises an error of class
#'   `rmsprop_python_error` when the engine is not usable.
#' @export
#' @examples
#' engine_available()
#' @examplesIf rmsprop::engine_available()
#' rmsprop_python_config()$engine
engine_available <- function() {
  isTRUE(tryCatch(!is.null(engine()), error = function(e) FALSE))
}

#' @rdname engine_available
#' @export
rmsprop_python_config <- function() {
  module <- engine()
  list(
    python = current_python(),
    source = .rmsprop$source,
    engine = module$`__version__`,
    numpy = reticulate::import("numpy")$`__version__`
  )
}
