test_that("optimizer_apply() trains least squares to near-zero loss", {
  skip_if_no_engine()
  set.seed(42)
  n <- 100
  X <- matrix(rnorm(n * 3), n, 3)
  y <- drop(X %*% c(1.5, -2, 0.5) + 0.75)
  params <- list(w = matrix(0, 3, 1), b = 0)
  loss <- function(p) mean((X %*% p$w + p$b - y)^2)
  schedule <- learning_rate_schedule_exponential_decay(0.05, decay_steps = 200, decay_rate = 0.5)
  opt <- optimizer_rmsprop(learning_rate = schedule)
  start <- loss(params)
  for (i in 1:1500) {
    r <- drop(X %*% params$w + params$b - y)
    grads <- list(w = 2 * crossprod(X, r) / n, b = 2 * mean(r))
    params <- optimizer_apply(opt, grads, params)
  }
  expect_lt(loss(params), 1e-6 * start)
  expect_equal(drop(params$w), c(1.5, -2, 0.5), tolerance = 1e-3)
  expect_equal(params$b, 0.75, tolerance = 1e-3)
  # structure is kept: a 3 x 1 matrix and a plain scalar
  expect_identical(dim(params$w), c(3L, 1L))
  expect_null(attributes(params$b))
  expect_identical(names(params), c("w", "b"))
  expect_identical(opt$iterations, 1500L)
})

test_that("results match plain-R RMSprop, whatever the memory order", {
  skip_if_no_engine()
  p0 <- matrix(c(1, -2, 3, 0.5, 4, -1), 3, 2)
  grads <- list(matrix(c(0.1, 2, -3, 0.4, 5, -0.6), 3, 2),
                matrix(c(1, -1, 2, -2, 3, -3), 3, 2),
                matrix(c(-0.5, 0.25, 1, 2, -4, 8), 3, 2))
  for (centered in c(FALSE, TRUE)) {
    opt <- optimizer_rmsprop(learning_rate = 0.1, momentum = 0.5, centered = centered)
    p <- p0
    for (g in grads) p <- optimizer_apply(opt, g, p)
    expected <- r_rmsprop(p0, grads, lr = opt$learning_rate, momentum = 0.5,
                          centered = centered)
    expect_equal(p, expected, tolerance = 1e-14)
  }
  # a 3-d array and its transposes
  a <- array(seq_len(24) / 7, c(2, 3, 4))
  g <- array(sin(seq_len(24)), c(2, 3, 4))
  opt <- optimizer_rmsprop(learning_rate = 0.1)
  expect_equal(optimizer_apply(opt, g, a), r_rmsprop(a, list(g), lr = opt$learning_rate),
               tolerance = 1e-14)
  opt_t <- optimizer_rmsprop(learning_rate = 0.1)
  at <- aperm(a)
  expect_equal(optimizer_apply(opt_t, aperm(g), at),
               aperm(r_rmsprop(a, list(g), lr = opt$learning_rate)), tolerance = 1e-14)
})

test_that("optimizer_apply() keeps structure, names, dims and attributes", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop()
  m <- matrix(1:6, 2, 3, dimnames = list(c("a", "b"), c("x", "y", "z")))
  params <- list(m = m, v = c(p = 1, q = 2), s = 3L, one_d = array(1:2, 2))
  grads <- list(m = m, v = c(1, 1), s = 1, one_d = array(1, 2))
  out <- optimizer_apply(opt, grads, params)
  expect_identical(names(out), names(params))
  for (k in names(params)) {
    expect_identical(attributes(out[[k]]), attributes(params[[k]]))
    expect_identical(storage.mode(out[[k]]), "double")
  }
  # a single vector (no list), and unnamed lists
  expect_identical(names(optimizer_apply(optimizer_rmsprop(), c(a = 1, b = 1), c(a = 1, b = 2))),
                   c("a", "b"))
  un <- optimizer_apply(optimizer_rmsprop(), list(1, c(1, 1)), list(1, c(2, 3)))
  expect_null(names(un))
  expect_length(un[[2]], 2)
  # the engine names the variables after the list names (or param_i)
  opt2 <- optimizer_rmsprop()
  optimizer_apply(opt2, list(w = 1, 1), list(w = 1, 2))
  expect_identical(vapply(opt2$variables, function(v) v$name, "")[-(1:2)],
                   c("w_velocity", "param_2_velocity"))
})

test_that("NULL gradients leave their parameter unchanged", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop(learning_rate = 0.1)
  expect_warning(out <- optimizer_apply(opt, list(a = 1, b = NULL), list(a = 1, b = 2)),
                 "'b'")
  expect_identical(out$b, 2)
  expect_lt(out$a, 1)
  # All of them NULL: an error only, not also the warning about each.
  expect_no_warning(e <- tryCatch(optimizer_apply(opt, list(a = NULL, b = NULL), out),
                                  error = identity))
  expect_s3_class(e, "rmsprop_engine_error")
  expect_match(conditionMessage(e), "No gradients")
  # A step refused for a non-finite gradient: the error only, too.
  expect_no_warning(e <- tryCatch(optimizer_apply(opt, list(a = NaN, b = NULL), out),
                                  error = identity))
  expect_match(conditionMessage(e), "grads$a contains NaN at [1]", fixed = TRUE)
  # Values sent again (another step came in between): one warning.
  rmsprop:::engine()$apply_to_values(opt, list(array(1), array(1)), list(array(1), array(2)))
  w <- character()
  withCallingHandlers(optimizer_apply(opt, list(a = 1, b = NULL), out),
                      warning = function(c) {
                        w <<- c(w, conditionMessage(c))
                        invokeRestart("muffleWarning")
                      })
  expect_length(w, 1L)
})

test_that("dtype = 'float32' reproduces float32 arithmetic", {
  skip_if_no_engine()
  p64 <- optimizer_apply(optimizer_rmsprop(learning_rate = 0.1), 1 / 3, 1 / 7)
  p32 <- optimizer_apply(optimizer_rmsprop(learning_rate = 0.1), 1 / 3, 1 / 7, dtype = "float32")
  np <- reticulate::import("numpy", convert = FALSE)
  # a float32 value, returned as a double
  expect_identical(p32, reticulate::py_to_r(np$float64(np$float32(p32))))
  expect_false(identical(p32, p64))
  expect_equal(p32, p64, tolerance = 1e-6)
  opt <- optimizer_rmsprop()
  optimizer_apply(opt, 1, 1, dtype = "float32")
  expect_error(optimizer_apply(opt, 1, 1), "float32")
})

test_that("a changed structure between calls is a clear error", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop()
  optimizer_apply(opt, list(w = c(1, 1), b = 1), list(w = c(1, 2), b = 0))
  expect_error(optimizer_apply(opt, list(w = c(1, 1)), list(w = c(1, 2))), "2 parameters")
  # (shapes as R says them, not as Python tuples)
  expect_error(optimizer_apply(opt, list(w = c(1, 1, 1), b = 1), list(w = c(1, 2, 3), b = 0)),
               "Parameter 1 ('w') has length 3; the optimizer was first used with length 2.",
               fixed = TRUE)
  expect_error(optimizer_apply(opt, list(w = matrix(1, 2, 1), b = 1),
                               list(w = matrix(1, 2, 1), b = 0)),
               "Parameter 1 ('w') has dim c(2, 1); the optimizer was first used with length 2.",
               fixed = TRUE)
  e <- tryCatch(optimizer_apply(opt, list(w = 1), list(w = 1)), error = identity)
  expect_s3_class(e, "rmsprop_engine_error")
  expect_false(grepl("py_last_error|Traceback", conditionMessage(e)))
})

test_that("the names are fixed at the first call: renamed or reordered params are an error", {
  skip_if_no_engine()
  # (positions alone would let `b` take over the velocity of `w`)
  opt <- optimizer_rmsprop(use_ema = TRUE)
  p <- optimizer_apply(opt, list(w = c(1, 1), b = c(3, 3)), list(w = c(0, 0), b = c(0, 0)))
  before <- lapply(opt$variables, as.array)
  finalized <- optimizer_finalize(opt, p)
  fixed <- "The names are fixed at the first call: use a new optimizer for a new model."
  e <- tryCatch(optimizer_apply(opt, list(b = c(1, 1), w = c(3, 3)), list(b = p$b, w = p$w)),
                error = identity)
  expect_s3_class(e, "rmsprop_argument_error")
  expect_identical(conditionMessage(e), paste(
    "The optimizer was first used with parameters named c(\"w\", \"b\"); got c(\"b\", \"w\").",
    fixed))
  expect_error(optimizer_apply(opt, list(w = c(1, 1), v = c(3, 3)), list(w = p$w, v = p$b)),
               "got c(\"w\", \"v\")", fixed = TRUE, class = "rmsprop_argument_error")
  expect_error(optimizer_apply(opt, list(c(1, 1), c(3, 3)), unname(p)),
               "got c(\"param_1\", \"param_2\")", fixed = TRUE, class = "rmsprop_argument_error")
  expect_identical(lapply(opt$variables, as.array), before)
  expect_identical(opt$iterations, 1L)
  expect_identical(optimizer_finalize(opt, p), finalized)
  # the same names go on
  expect_named(optimizer_apply(opt, list(w = c(1, 1), b = c(3, 3)), p), c("w", "b"))
  expect_identical(opt$iterations, 2L)
})

test_that("optimizer_apply() works with a loss-scale optimizer", {
  skip_if_no_engine()
  opt <- optimizer_loss_scale(optimizer_rmsprop(learning_rate = 0.1), initial_scale = 8,
                              dynamic_growth_steps = 2)
  expect_s3_class(opt, "rmsprop_loss_scale_optimizer")
  p <- optimizer_apply(opt, c(8, 8), c(1, 1))
  expect_equal(p, r_rmsprop(c(1, 1), list(c(1, 1)), lr = opt$learning_rate))
  p2 <- optimizer_apply(opt, c(Inf, 1), p)
  expect_identical(p2, p)
  expect_identical(opt$iterations, 1L)
  expect_identical(as.numeric(opt$dynamic_scale), 4)
  expect_identical(opt$scale_loss(2), 8)
})

test_that("optimizer_finalize() gives the EMA of the trained values", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop(learning_rate = 0.1, use_ema = TRUE, ema_momentum = 0.5)
  params <- list(w = matrix(c(1, 2, 3, 4), 2, 2), b = 0.5)
  # EMA written out in R from the documented rule: the first average is the
  # value itself, then average = m * average + (1 - m) * value, m = 0.5.
  average <- NULL
  for (i in 1:4) {
    grads <- list(w = 2 * params$w, b = 2 * params$b)
    params <- optimizer_apply(opt, grads, params)
    average <- if (is.null(average)) params else Map(function(a, p) 0.5 * a + 0.5 * p, average, params)
  }
  final <- optimizer_finalize(opt, params)
  expect_identical(names(final), c("w", "b"))
  expect_identical(dim(final$w), c(2L, 2L))
  expect_equal(final$w, average$w, tolerance = 1e-12)
  expect_equal(final$b, average$b, tolerance = 1e-12)
  expect_false(isTRUE(all.equal(final$w, params$w)))
  # the optimizer is unchanged: training goes on from the same state
  expect_equal(opt$iterations, 4)
})

test_that("optimizer_finalize() without EMA returns the current values; bad use errors", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop()
  p <- optimizer_apply(opt, c(1, 2), c(0, 0))
  expect_identical(optimizer_finalize(opt, c(0, 0)), p)
  expect_error(optimizer_finalize(optimizer_rmsprop(), 1), "optimizer_apply()", fixed = TRUE)
  expect_error(optimizer_finalize(opt, list(1, 2)), "params")
})

test_that("optimizer_apply() and optimizer_finalize() on a built optimizer say so in R's terms", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop(use_ema = TRUE)
  opt$build(list(rmsprop_variable(c(1, 2), name = "w")))
  e <- tryCatch(optimizer_finalize(opt, c(1, 2)), error = identity)
  expect_s3_class(e, "rmsprop_argument_error")
  expect_match(conditionMessage(e), "built on its own variables", fixed = TRUE)
  expect_match(conditionMessage(e), "finalize_variable_values()", fixed = TRUE)
  e2 <- tryCatch(optimizer_apply(opt, c(1, 2), c(1, 2)), error = identity)
  expect_match(conditionMessage(e2), "create a new optimizer for optimizer_apply()", fixed = TRUE)
  # no engine-internal names reach R users
  for (text in c(conditionMessage(e), conditionMessage(e2))) {
    expect_false(grepl("apply_to_values|apply_for_r|finalized_values|positional|Trainer", text))
  }
})

test_that("optimizer_finalize() checks the structure it is given", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop(use_ema = TRUE)
  params <- optimizer_apply(opt, list(y = c(1, 2, 3), b = 1), list(y = c(0, 0, 0), b = 0))
  expect_error(optimizer_finalize(opt, list(y = 1, b = 1)),
               "`params$y` must have the shape used with optimizer_apply(): length 3; got 1.",
               fixed = TRUE)
  expect_error(optimizer_finalize(opt, list(y = c(1, 2, 3))), "2 parameters")
  expect_error(optimizer_finalize(opt, list(y = matrix(1, 3, 1), b = 1)), "params$y", fixed = TRUE)
  expect_length(optimizer_finalize(opt, params)$y, 3)
})

# The engine writes long results into fresh R vectors, and is not sent the
# values it returned last time (it keeps a read-only record of them). These
# tests pin what that must never change.

test_that("a result handed out earlier never changes afterwards", {
  skip_if_no_engine()
  set.seed(3)
  # short (one shared vector) and long (own vector) results, plain and with dims
  params <- list(a = rnorm(5), b = matrix(rnorm(12), 3, 4), c = rnorm(300),
                 d = array(rnorm(240), c(4, 6, 10)))
  grads <- lapply(params, function(p) p * 0 + 0.5)
  opt <- optimizer_rmsprop(learning_rate = 0.1)
  results <- list()
  copies <- list()
  for (i in 1:4) {
    params <- optimizer_apply(opt, grads, params)
    results[[i]] <- params
    # a copy made at once (arithmetic: serialize() would first make R copy a
    # result it wraps, and the test would no longer see the engine's memory)
    copies[[i]] <- lapply(params, function(p) p * 1)
  }
  for (i in 1:4) expect_identical(results[[i]], copies[[i]])
  expect_false(identical(results[[1]]$c, results[[4]]$c))
  # a single long vector too
  opt <- optimizer_rmsprop(learning_rate = 0.1)
  first <- optimizer_apply(opt, rep(1, 100), seq_len(100) / 10)
  kept <- first + 0
  second <- optimizer_apply(opt, rep(1, 100), first)
  third <- optimizer_apply(opt, rep(1, 100), second)
  expect_identical(first, kept)
  expect_false(identical(second, third))
})

test_that("the caller's vectors are never written, whichever one the engine writes into", {
  skip_if_no_engine()
  set.seed(5)
  # Long plain vectors are copied to reach the engine; optimizer_apply()
  # reuses those copies as result vectors. Vectors with a dim reach it
  # without a copy: they must never be written.
  p <- list(a = rnorm(300), m = matrix(rnorm(300), 30, 10), i = 1:300, v = array(rnorm(300), 300))
  g <- list(a = rnorm(300), m = matrix(rnorm(300), 30, 10), i = rnorm(300), v = rnorm(300))
  p_kept <- lapply(p, function(x) x * 1L)
  g_kept <- lapply(g, function(x) x * 1)
  opt <- optimizer_rmsprop(learning_rate = 0.1)
  r1 <- optimizer_apply(opt, g, p)          # values sent
  r1_kept <- lapply(r1, function(x) x * 1)
  r2 <- optimizer_apply(opt, g, r1)         # values not sent again
  r2_kept <- lapply(r2, function(x) x * 1)
  # the gradients are the parameters themselves, and the same vector twice
  r3 <- optimizer_apply(opt, r2, r2)
  same <- list(a = g$a, m = g$m, i = g$a, v = g$a)
  r4 <- optimizer_apply(opt, same, r3)
  expect_identical(p, p_kept)
  expect_identical(g, g_kept)
  expect_identical(r1, r1_kept)
  expect_identical(r2, r2_kept)
  expect_false(identical(r3, r2))
  expect_false(identical(r4$a, r3$a))
  # one gradient vector for three parameters: three copies, three results
  expect_false(identical(r4$a, r4$i))
  expect_false(identical(r4$a, r4$v))
})

test_that("each step starts from the values passed, whatever happened in between", {
  skip_if_no_engine()
  set.seed(4)
  p0 <- list(w = rnorm(200), b = rnorm(3))
  g <- list(w = rnorm(200), b = rnorm(3))
  twin <- optimizer_rmsprop(learning_rate = 0.01)
  opt <- optimizer_rmsprop(learning_rate = 0.01)
  expected <- optimizer_apply(twin, g, p0)
  p1 <- optimizer_apply(opt, g, p0)
  expect_identical(p1, expected)
  # the engine's copies of the values are changed behind optimizer_apply()'s back
  trainer <- reticulate::import("rmsprop.positional")$TRAINERS$trainer(opt)
  for (v in trainer$variables) v$assign(v$numpy() * 0 + 7)
  expected <- optimizer_apply(twin, g, expected)
  p2 <- optimizer_apply(opt, g, p1)
  expect_identical(p2, expected)
  # a step through the Python interface in between: the next step still
  # starts from the values given
  # (the twin takes it too: it changes the optimizer's state)
  for (o in list(opt, twin)) rmsprop:::engine()$apply_to_values(o, unname(g), unname(p0))
  expected <- optimizer_apply(twin, g, expected)
  p3 <- optimizer_apply(opt, g, p2)
  expect_equal(p3, expected, tolerance = 0)
  expect_identical(opt$iterations, 4L)
  # values changed by the caller (one element, or a copy with an attribute
  # added; a new name is an error, the names being fixed at the first call)
  changed <- p3
  changed$w[7] <- 1
  twin_changed <- optimizer_rmsprop(learning_rate = 0.01)
  mine <- optimizer_rmsprop(learning_rate = 0.01)
  a <- optimizer_apply(twin_changed, g, p0)
  b <- optimizer_apply(mine, g, p0)
  b$w[7] <- 1
  a$w[7] <- 1
  expect_identical(optimizer_apply(mine, g, b), optimizer_apply(twin_changed, g, a))
  tagged <- b
  attr(tagged, "note") <- "copy"
  expect_identical(attr(optimizer_apply(mine, g, tagged), "note"), "copy")
})

test_that("a missing gradient warns once when the values must be sent again", {
  skip_if_no_engine()
  p <- list(w = rnorm(100), b = c(1, 2))
  g <- list(w = rnorm(100), b = c(0.5, 0.5))
  opt <- optimizer_rmsprop(learning_rate = 0.1)
  p1 <- optimizer_apply(opt, g, p)
  # a step through the Python interface in between: the engine no longer
  # holds p1, so optimizer_apply() sends it
  rmsprop:::engine()$apply_to_values(opt, unname(g), unname(p1))
  messages <- character()
  withCallingHandlers(
    p2 <- optimizer_apply(opt, list(w = g$w, b = NULL), p1),
    warning = function(w) {
      messages <<- c(messages, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  expect_identical(messages,
                   "Gradients do not exist for parameter 'b'; it is left unchanged this step.")
  expect_identical(p2$b, p1$b)
  expect_identical(opt$iterations, 3L)
})

test_that("a changed structure is still refused after steps on the same values", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop()
  p <- optimizer_apply(opt, list(w = rep(1, 100)), list(w = rep(0, 100)))
  expect_error(optimizer_apply(opt, list(w = rep(1, 101)), list(w = c(p$w, 0))),
               class = "rmsprop_engine_error")
  expect_error(optimizer_apply(opt, list(w = matrix(1, 10, 10)), list(w = matrix(p$w, 10, 10))),
               class = "rmsprop_engine_error")
  expect_identical(opt$iterations, 1L)
  expect_identical(length(optimizer_apply(opt, list(w = rep(1, 100)), p)$w), 100L)
})

test_that("a refused first call leaves the optimizer unbuilt, ready for any structure", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop(learning_rate = function() NA)
  expect_error(optimizer_apply(opt, c(1, 2), c(1, 2)), class = "rmsprop_argument_error")
  expect_false(opt$built)
  opt$learning_rate <- 0.1
  expect_identical(optimizer_apply(opt, c(1, 2, 3), c(1, 2, 3)),
                   optimizer_apply(optimizer_rmsprop(0.1), c(1, 2, 3), c(1, 2, 3)))
})
