# Finding Python and the engine, lazily, on first use.
#
# Order: option `rmsprop.python`, env var `RMSPROP_PYTHON`, env var
# `RETICULATE_PYTHON` (left to reticulate), the path recorded by the source
# checkout's `make setup` in `tools::R_user_dir("rmsprop", "config")/python`,
# then reticulate's own choice (with `py_require("numpy")` declared first,
# reticulate's convention for packages that need Python).
#
# The engine is imported from the chosen Python when it has one; otherwise
# the copy bundled in this package (inst/python/rmsprop, which R CMD build
# fills from python/rmsprop) is imported. Either way its version must be the
# R package's.

.rmsprop <- new.env(parent = emptyenv())

recorded_python_file <- function() {
  file.path(tools::R_user_dir("rmsprop", "config"), "python")
}

# The folder holding the bundled engine (the package "rmsprop" inside it).
bundled_engine_dir <- function() {
  system.file("python", package = "rmsprop")
}

# list(path = <interpreter or NULL to let reticulate decide>, source = <text>,
#      configured = <FALSE when nothing names a Python>)
python_choice <- function() {
  opt <- getOption("rmsprop.python")
  if (!is.null(opt)) {
    if (!is.character(opt) || length(opt) != 1L || is.na(opt) || !nzchar(opt)) {
      python_error(sprintf(paste0("Option `rmsprop.python` must be the path of a ",
                                  "Python interpreter; got %s."),
                           describe_value(opt)), "")
    }
    return(list(path = opt, source = "option `rmsprop.python`", configured = TRUE))
  }
  env <- Sys.getenv("RMSPROP_PYTHON")
  if (nzchar(env)) {
    return(list(path = env, source = "environment variable RMSPROP_PYTHON", configured = TRUE))
  }
  env <- Sys.getenv("RETICULATE_PYTHON")
  if (nzchar(env)) {
    return(list(path = NULL, named = env, source = "environment variable RETICULATE_PYTHON",
                configured = TRUE))
  }
  file <- recorded_python_file()
  if (file.exists(file)) {
    path <- trimws(readLines(file, n = 1L, warn = FALSE))
    if (length(path) == 1L && nzchar(path)) {
      return(list(path = path, source = paste0("the path recorded by `make setup` in ", file),
                  configured = TRUE))
    }
  }
  list(path = NULL, source = "reticulate's default search", configured = FALSE)
}

python_fix_hint <- paste(
  "To fix: point R at a Python with NumPy (the package brings its own engine) with",
  "`options(rmsprop.python = \"/path/to/python\")` or the RMSPROP_PYTHON environment variable,",
  "in a new R session; in the rmsprop source checkout, `make setup` does this for you."
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

# `path` made absolute without resolving its last link (a venv's python is a
# link to the system's, and must stay the venv's).
# argv[0] of this process as it was started (under rpy2, commandArgs() are
# rpy2's, not the process's), or "" where /proc is not available.
process_start_path <- function() {
  raw <- tryCatch(suppressWarnings(readBin("/proc/self/cmdline", "raw", 65536L)),
                  error = function(e) raw())
  end <- match(as.raw(0L), raw)
  if (is.na(end)) return("")
  rawToChar(raw[seq_len(end - 1L)])
}

absolute_path <- function(path) {
  file.path(normalizePath(dirname(path), mustWork = FALSE), basename(path))
}

# Two interpreter paths name the same interpreter in the same environment:
# their folders are the same (a venv's python links to the system's, so the
# file itself is not compared).
same_python <- function(a, b) {
  identical(absolute_path(path.expand(a)), absolute_path(path.expand(b)))
}

# Bind reticulate to the chosen Python (nothing is initialized yet). Returns
# the value of RETICULATE_PYTHON to restore once Python is initialized (NA:
# nothing to restore).
bind_python <- function(choice) {
  if (is.null(choice$path)) {
    # Nothing names an interpreter: reticulate's convention for packages is to
    # declare what they need and let reticulate find or provision a Python.
    if (!choice$configured && "py_require" %in% getNamespaceExports("reticulate")) {
      reticulate::py_require("numpy")
    }
    return(NA_character_)
  }
  path <- path.expand(choice$path)
  if (!file.exists(path)) {
    python_error(sprintf("No usable Python: %s, named by %s, does not exist.", path, choice$source))
  }
  # RETICULATE_PYTHON would win over use_python() when reticulate starts;
  # ours comes first, so it is unset until then.
  old <- Sys.getenv("RETICULATE_PYTHON", unset = NA)
  if (!is.na(old)) Sys.unsetenv("RETICULATE_PYTHON")
  ok <- tryCatch({
    reticulate::use_python(path, required = TRUE)
    TRUE
  }, error = function(e) e)
  if (!isTRUE(ok)) {
    if (!is.na(old)) Sys.setenv(RETICULATE_PYTHON = old)
    python_error(sprintf("No usable Python: %s (named by %s) cannot be used by reticulate.",
                         path, choice$source), short_message(ok))
  }
  old
}

# Why the running Python was chosen, truthfully: reticulate may have been
# started (or bound with use_python()) on another interpreter before the
# package chose.
already_running <- "reticulate, already initialized in this session before rmsprop chose"

chosen_by <- function(choice) {
  named <- if (is.null(choice$path)) choice$named else choice$path
  if (is.null(named)) {
    if (isTRUE(choice$was_running)) return(already_running)
    return(choice$source)
  }
  if (same_python(named, current_python())) return(choice$source)
  sprintf("%s (%s names %s, which was not used)", already_running, choice$source, named)
}

# The engine module: the chosen Python's own, else the bundled copy.
import_engine <- function(choice) {
  own <- tryCatch(reticulate::import("rmsprop", delay_load = FALSE), error = function(e) e)
  if (!inherits(own, "error")) return(own)
  if (!reticulate::py_available(initialize = FALSE)) {
    start <- relative_embedding_start()
    if (!is.null(start)) {
      python_error(sprintf(paste(
        "R runs inside a Python process (rpy2) started through the relative path %s;",
        "reticulate can attach R to that Python only when the process was started through",
        "an absolute path. Start it as %s instead."), start, absolute_path(start)))
    }
    python_error(sprintf("No usable Python was found (looked at %s).", choice$source),
                 short_message(own))
  }
  python <- current_python()
  source <- chosen_by(choice)
  if (!reticulate::py_module_available("numpy")) {
    python_error(sprintf("NumPy is not installed in the Python R uses (%s, chosen by %s).",
                         python, source))
  }
  dir <- bundled_engine_dir()
  bundled <- if (nzchar(dir)) {
    tryCatch(reticulate::import_from_path("rmsprop", path = dir, delay_load = FALSE),
             error = function(e) e)
  } else {
    own
  }
  if (inherits(bundled, "error")) {
    python_error(sprintf(paste("The rmsprop Python engine cannot be imported in the Python R",
                               "uses (%s, chosen by %s)."),
                         python, source), short_message(bundled))
  }
  bundled
}

# The relative path a Python process that embeds R (rpy2) was started
# through, or NULL. reticulate 1.47 (src/python.cpp,
# main_process_python_info_unix()) finds the running interpreter's library
# with dladdr() on Py_IsInitialized; for a symbol of the executable itself
# glibc reports the process's argv[0] (elf/dl-addr.c), which reticulate
# takes as libpython unless it equals Py_GetProgramFullPath() (absolute) or
# is "python". A relative argv[0] (".venv/bin/python") thus becomes
# libpython, and py_initialize() dlopen()s the executable: "cannot
# dynamically load executable". py_discover_config() (R/config.R) asks
# main_process_python_info() before RETICULATE_PYTHON, use_python() or any
# option, so nothing a package sets before binding changes it (tried:
# RETICULATE_PYTHON, options(reticulate.python), use_python(required =
# TRUE) with the absolute path). Only the process's argv[0] matters.
relative_embedding_start <- function() {
  exe <- Sys.readlink("/proc/self/exe")
  start <- process_start_path()
  embedded <- length(exe) == 1L && !is.na(exe) && startsWith(basename(exe), "python")
  if (embedded && grepl("/", start, fixed = TRUE) && !startsWith(start, "/")) start else NULL
}

# Initialize Python (once), import the engine, cache what the hot paths need.
init_engine <- function() {
  choice <- python_choice()
  choice$was_running <- reticulate::py_available(initialize = FALSE)
  if (!choice$was_running) {
    old <- bind_python(choice)
    if (!is.na(old)) on.exit(Sys.setenv(RETICULATE_PYTHON = old), add = TRUE)
  }
  module <- import_engine(choice)
  source <- chosen_by(choice)
  version <- tryCatch(as.character(module$`__version__`), error = function(e) "<unknown>")
  wanted <- getNamespaceVersion("rmsprop")[[1L]]
  if (!identical(version, wanted)) {
    python_error(sprintf(paste("The rmsprop Python engine in the Python R uses (%s, chosen by %s)",
                               "is version %s (from %s), but this R package is version %s:",
                               "they must match."),
                         current_python(), source, version,
                         tryCatch(as.character(module$`__file__`), error = function(e) "?"),
                         wanted))
  }
  positional <- reticulate::import("rmsprop.positional", convert = FALSE)
  .rmsprop$apply_for_r <- reticulate::py_get_attr(positional, "apply_for_r")
  .rmsprop$trainer_of <- reticulate::py_get_attr(reticulate::py_get_attr(positional, "TRAINERS"),
                                                 "trainer")
  .rmsprop$source <- source
  .rmsprop$module <- module
  module
}

# The engine module (reticulate, converting results to R). Every exported
# function calls this (directly or through one that does) before it hands
# anything to reticulate, so that the package, not reticulate, picks Python.
engine <- function() {
  module <- .rmsprop$module
  if (is.null(module)) module <- init_engine()
  module
}

#' Is the Python engine available?
#'
#' `engine_available()` reports whether Python, NumPy and the rmsprop engine
#' can be used, without raising an error. `rmsprop_python_config()` tells
#' which Python is used, why, and where its engine comes from.
#'
#' Python is looked for, on first use, in this order: the option
#' `rmsprop.python`, the environment variable `RMSPROP_PYTHON`, the
#' environment variable `RETICULATE_PYTHON`, the interpreter recorded by
#' `make setup` of the source checkout (in the file `python` of
#' `tools::R_user_dir("rmsprop", "config")`), then whatever reticulate
#' finds. When none of these names a Python, the package declares
#' `reticulate::py_require("numpy")` (with reticulate >= 1.41), reticulate's
#' convention for packages that need Python, so that reticulate may provide
#' one. Python is chosen once per R session: set the option or the variable
#' before the first call of any function of the package. When reticulate was
#' already started on another interpreter (by another package, or by
#' `reticulate::use_python()` and a call), that interpreter is used, and
#' `rmsprop_python_config()$source` says so.
#'
#' The engine is imported from the chosen Python when it has one (`pip
#' install` of the Python package), otherwise from the copy bundled with
#' this R package, which needs only NumPy. Its version must be the R
#' package's.
#'
#' `engine_available()` never starts a search of its own: when nothing names
#' a Python (and reticulate is not running yet) it returns `FALSE` quietly,
#' without asking reticulate to find, download or install anything. Any
#' other function of the package does start the search.
#'
#' The engine updates with its compiled kernel when that was built (`pip
#' install` with a C compiler), else with its NumPy kernel; both give the
#' same results. Large updates use several threads:
#' `options(rmsprop.num_threads = n)` sets how many (read at each
#' [optimizer_apply()]); forked workers such as [parallel::mclapply()]'s
#' are safe before, between and after steps.
#'
#' @return `engine_available()`: `TRUE` or `FALSE`. `rmsprop_python_config()`:
#'   a list with `python` (the interpreter), `source` (why it was chosen),
#'   `engine` and `numpy` (their versions) and `engine_path` (where the
#'   engine was imported from: the chosen Python's own, or the copy bundled
#'   with the R package), `kernel` (the update kernel that runs:
#'   `"compiled"`, or `"numpy"` where the compiled one was not built) and
#'   `threads` (how many threads it may use for one large update: the option
#'   `rmsprop.num_threads` when set, else the engine's default: the cores,
#'   at most 8; the results do not depend on it);
#'   it raises an error of class
#'   `rmsprop_python_error` when the engine is not usable.
#' @export
#' @examples
#' engine_available()
#' @examplesIf rmsprop::engine_available()
#' rmsprop_python_config()$engine
engine_available <- function() {
  if (is.null(.rmsprop$module) && !python_choice_quietly()$configured &&
      !reticulate::py_available(initialize = FALSE)) {
    return(FALSE)
  }
  isTRUE(tryCatch(suppressMessages(suppressWarnings(!is.null(engine()))),
                  error = function(e) FALSE))
}

# python_choice() without its error for a malformed option (reported later,
# by the first function that needs Python).
python_choice_quietly <- function() {
  tryCatch(python_choice(), error = function(e) list(configured = TRUE))
}

#' @rdname engine_available
#' @export
rmsprop_python_config <- function() {
  module <- engine()
  sync_num_threads()
  list(
    python = current_python(),
    source = .rmsprop$source,
    engine = module$`__version__`,
    numpy = reticulate::import("numpy")$`__version__`,
    engine_path = dirname(module$`__file__`),
    kernel = module$kernel_info()$kernel,
    threads = module$num_threads()
  )
}
