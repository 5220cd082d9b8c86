# Run the R package's testthat suite (tests/testthat) against the INSTALLED
# package (make setup installs it from this checkout), print a plain summary
# line and exit non-zero if any test failed or errored.
#
#   Rscript scripts/run-r-tests.R [pkg-root]
# If R_TEST_COUNTS names a file, "passed failed skipped" is written to it.
args <- commandArgs(trailingOnly = TRUE)
root <- if (length(args)) args[[1]] else "."
pkg <- unname(read.dcf(file.path(root, "DESCRIPTION"), fields = "Package")[1, 1])

res <- tryCatch(
  testthat::test_dir(
    file.path(root, "tests", "testthat"),
    package = pkg,
    load_package = "installed",
    reporter = testthat::SummaryReporter$new(show_praise = FALSE),
    stop_on_failure = FALSE,
    stop_on_warning = FALSE
  ),
  error = function(e) {
    message("testthat run aborted: ", conditionMessage(e))
    NULL
  }
)
if (is.null(res)) quit(status = 1)

df <- as.data.frame(res)
# Count tests (test_that blocks), like pytest does, not expectations.
bad <- df$error | df$failed > 0
n_failed <- sum(bad)
n_skipped <- sum(!bad & df$skipped)
n_passed <- sum(!bad & !df$skipped)
cat(sprintf("(%d expectations passed)\n", sum(df$passed)))
cat(sprintf("testthat: %d passed, %d failed, %d skipped\n", n_passed, n_failed, n_skipped))
counts_file <- Sys.getenv("R_TEST_COUNTS")
if (nzchar(counts_file))
  writeLines(sprintf("%d %d %d", n_passed, n_failed, n_skipped), counts_file)
quit(status = if (n_failed > 0) 1L else 0L)
