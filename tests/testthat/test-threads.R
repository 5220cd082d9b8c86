# Threads of the compiled kernel, from R: the option, results independent of
# the thread count, and forked children (parallel::mclapply) after threaded
# steps.

big_case <- function() {
  # Large enough that the compiled kernel splits the update over threads
  # (at least min_elements_per_thread per thread).
  per_thread <- py_rmsprop()$kernel_info()$min_elements_per_thread
  n <- 3L * as.integer(if (is.null(per_thread)) 1e5 else per_thread) + 77L
  set.seed(11)
  list(p = rnorm(n), g = lapply(1:3, function(i) rnorm(n) * 10^runif(n, -3, 0)))
}

steps <- function(case, count, opt = optimizer_rmsprop(learning_rate = 0.01, momentum = 0.9)) {
  p <- case$p
  for (g in case$g[seq_len(count)]) p <- optimizer_apply(opt, g, p)
  list(p = p, opt = opt)
}

test_that("options(rmsprop.num_threads) sets the engine's threads; results do not depend on it", {
  skip_if_no_engine()
  withr::defer(options(rmsprop.num_threads = NULL))
  case <- big_case()
  options(rmsprop.num_threads = 1)
  one <- steps(case, 3)$p
  expect_equal(py_rmsprop()$num_threads(), 1L)
  options(rmsprop.num_threads = 3L)
  three <- steps(case, 3)$p
  expect_equal(py_rmsprop()$num_threads(), 3L)
  expect_identical(one, three)
  expect_equal(rmsprop_python_config()$threads, 3L)
  options(rmsprop.num_threads = NULL)
  steps(case, 1)
  expect_equal(py_rmsprop()$num_threads(), py_rmsprop()$kernel_info()$default_threads)
})

test_that("a bad rmsprop.num_threads option is a classed error naming it", {
  skip_if_no_engine()
  withr::defer(options(rmsprop.num_threads = NULL))
  for (bad in list(0, 2.5, "4", c(1, 2), NA_real_, TRUE)) {
    options(rmsprop.num_threads = bad)
    expect_error(optimizer_apply(optimizer_rmsprop(), 1, 1),
                 "Option `rmsprop.num_threads` must be NULL or a whole number",
                 class = "rmsprop_argument_error")
  }
})

test_that("rmsprop_python_config() says which update kernel runs", {
  skip_if_no_engine()
  config <- rmsprop_python_config()
  expect_true(config$kernel %in% c("numpy", "compiled"))
  expect_identical(config$kernel, py_rmsprop()$kernel_info()$kernel)
})

test_that("children forked after threaded steps (parallel::mclapply) step correctly", {
  skip_if_no_engine()
  skip_on_os("windows")
  withr::defer(options(rmsprop.num_threads = NULL))
  options(rmsprop.num_threads = 4L)
  case <- big_case()
  expected <- steps(case, 3)$p
  started <- steps(case, 1)                  # threads have run in this process
  children <- parallel::mclapply(1:2, function(i) {
    p <- started$p
    for (g in case$g[2:3]) p <- optimizer_apply(started$opt, g, p)
    p
  }, mc.cores = 2L)
  for (child in children) expect_identical(child, expected)
  p <- started$p                             # and the parent goes on
  for (g in case$g[2:3]) p <- optimizer_apply(started$opt, g, p)
  expect_identical(p, expected)
})
