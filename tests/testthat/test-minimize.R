# rmsprop_minimize(): the optim()-like loop over optimizer_apply().

logistic_data <- function() {
  set.seed(42)
  n <- 300
  x <- cbind(1, matrix(rnorm(n * 3), n, 3))
  y <- rbinom(n, 1, plogis(x %*% c(-0.5, 1, -2, 0.5)))
  list(x = x, y = y)
}
nll <- function(beta, x, y) {
  eta <- drop(x %*% beta)
  sum(log1p(exp(eta)) - y * eta) / length(y)
}
nll_grad <- function(beta, x, y) drop(crossprod(x, plogis(drop(x %*% beta)) - y)) / length(y)

decaying <- function(initial = 0.05, steps = 50, rate = 0.7) {
  optimizer_rmsprop(learning_rate = learning_rate_schedule_exponential_decay(initial, steps, rate))
}

# The loop rmsprop_minimize() stands for, written out.
hand_loop <- function(par, gr, optimizer, steps, ..., scale = 1) {
  for (i in seq_len(steps)) {
    g <- gr(par, ...)
    g <- if (is.list(g)) lapply(g, `*`, scale) else g * scale
    par <- optimizer_apply(optimizer, g, par)
  }
  par
}

test_that("it reaches glm()'s coefficients on a logistic regression", {
  skip_if_no_engine()
  d <- logistic_data()
  fit <- rmsprop_minimize(c(a = 0, b = 0, c = 0, d = 0), nll, nll_grad, x = d$x, y = d$y,
                          optimizer = decaying(), control = list(maxit = 800, reltol = 0, every = 100))
  ref <- coef(glm(d$y ~ d$x[, -1], family = binomial(),
                  control = list(epsilon = 1e-14, maxit = 100)))
  expect_lt(max(abs(fit$par - ref)), 1e-6)
  expect_named(fit$par, c("a", "b", "c", "d"))
  expect_equal(fit$value, nll(fit$par, d$x, d$y))
  expect_identical(fit$convergence, 1L)
})

test_that("it reaches lm()'s coefficients on least squares, with a list of parameters", {
  skip_if_no_engine()
  set.seed(3)
  x <- matrix(rnorm(200), 100, 2)
  y <- drop(x %*% c(2, -1) + 0.5 + rnorm(100, sd = 0.1))
  fn <- function(p) mean((drop(x %*% p$w) + p$b - y)^2)
  gr <- function(p) {
    r <- drop(x %*% p$w) + p$b - y
    list(w = 2 * drop(crossprod(x, r)) / length(y), b = 2 * mean(r))
  }
  fit <- rmsprop_minimize(list(w = c(0, 0), b = 0), fn, gr, optimizer = decaying(),
                          control = list(maxit = 800, reltol = 0, every = 100))
  ref <- coef(lm(y ~ x))
  expect_lt(max(abs(c(fit$par$b, fit$par$w) - unname(ref))), 1e-6)
  expect_named(fit$par, c("w", "b"))
  expect_identical(names(coef(fit)), c("w1", "w2", "b"))
})

test_that("its result is identical() to the hand-written optimizer_apply() loop", {
  skip_if_no_engine()
  d <- logistic_data()
  fit <- rmsprop_minimize(rep(0, 4), nll, nll_grad, x = d$x, y = d$y,
                          optimizer = optimizer_rmsprop(0.01, momentum = 0.5, centered = TRUE),
                          control = list(maxit = 60, reltol = 0))
  by_hand <- hand_loop(rep(0, 4), nll_grad, optimizer_rmsprop(0.01, momentum = 0.5, centered = TRUE),
                       60, x = d$x, y = d$y)
  expect_identical(fit$par, by_hand)
  expect_identical(fit$value, nll(by_hand, d$x, d$y))
  expect_identical(fit$optimizer$iterations, 60L)
})

test_that("it respects maxit and counts the calls", {
  skip_if_no_engine()
  calls <- c(fn = 0, gr = 0)
  fn <- function(p) {
    calls[["fn"]] <<- calls[["fn"]] + 1
    sum(p^2)
  }
  gr <- function(p) {
    calls[["gr"]] <<- calls[["gr"]] + 1
    2 * p
  }
  fit <- rmsprop_minimize(c(1, 2), fn, gr, control = list(maxit = 7, reltol = 0))
  expect_identical(fit$steps, 7L)
  expect_identical(fit$convergence, 1L)
  expect_match(fit$message, "maxit (7) reached", fixed = TRUE)
  expect_identical(fit$counts, c(`function` = as.integer(calls[["fn"]]), gradient = 7L))
  expect_identical(calls[["gr"]], 7)
  expect_identical(fit$history$step, 0:7)
})

test_that("it stops at the first step that improves the loss by less than reltol", {
  skip_if_no_engine()
  fn <- function(p) sum((p - 3)^2)
  gr <- function(p) 2 * (p - 3)
  reltol <- 1e-4
  fit <- rmsprop_minimize(c(0, 1), fn, gr, optimizer = decaying(0.5, 20, 0.5),
                          control = list(maxit = 5000, reltol = reltol))
  expect_identical(fit$convergence, 0L)
  expect_lt(fit$steps, 5000L)
  v <- fit$history$value
  small <- abs(head(v, -1) - tail(v, -1)) <= reltol * (abs(tail(v, -1)) + reltol)
  expect_identical(which(small), length(v) - 1L)  # only the last step, and it did
  expect_match(fit$message, "reltol")
})

test_that("abstol stops a loss that reaches zero", {
  skip_if_no_engine()
  fit <- rmsprop_minimize(5, function(p) p^2, function(p) 2 * p,
                          optimizer = optimizer_rmsprop(0.1),
                          control = list(maxit = 1000, abstol = 1e-2, reltol = 0))
  expect_identical(fit$convergence, 0L)
  expect_lt(fit$value, 1e-2)
  expect_gte(tail(fit$history$value, 2)[[1]], 1e-2)
})

test_that("`...` reaches fn and gr", {
  skip_if_no_engine()
  fn <- function(p, target) sum((p - target)^2)
  gr <- function(p, target) 2 * (p - target)
  a <- rmsprop_minimize(0, fn, gr, target = 1, control = list(maxit = 5, reltol = 0))
  b <- rmsprop_minimize(0, fn, gr, target = -1, control = list(maxit = 5, reltol = 0))
  expect_gt(a$par, 0)
  expect_lt(b$par, 0)
  expect_identical(a$value, fn(a$par, 1))
})

test_that("with a schedule, history has the learning rate each step used", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop(learning_rate = learning_rate_schedule_exponential_decay(0.1, 10, 0.5))
  fit <- rmsprop_minimize(c(1, 2), function(p) sum(p^2), function(p) 2 * p, optimizer = opt,
                          control = list(maxit = 30, reltol = 0, every = 10))
  h <- fit$history
  expect_identical(h$step, c(0L, 10L, 20L, 30L))
  expect_true(is.na(h$learning_rate[[1]]))
  # the step numbered k is the optimizer's (k - 1)-th iteration
  expect_equal(h$learning_rate[-1], 0.1 * 0.5^((c(10, 20, 30) - 1) / 10), tolerance = 1e-6)
})

test_that("with EMA it returns the finalized values, as Keras ends training", {
  skip_if_no_engine()
  make <- function() optimizer_rmsprop(0.05, use_ema = TRUE, ema_momentum = 0.9)
  fn <- function(p) sum((p - c(1, -1))^2)
  gr <- function(p) 2 * (p - c(1, -1))
  fit <- rmsprop_minimize(c(0, 0), fn, gr, optimizer = make(),
                          control = list(maxit = 25, reltol = 0))
  opt <- make()
  trained <- hand_loop(c(0, 0), gr, opt, 25)
  expect_identical(fit$par, optimizer_finalize(opt, trained))
  expect_false(identical(fit$par, trained))
  expect_identical(fit$value, fn(fit$par))
})

test_that("with loss scaling it scales the gradient as Keras does, identical to the loop", {
  skip_if_no_engine()
  make <- function() optimizer_loss_scale(optimizer_rmsprop(0.05), initial_scale = 1024,
                                          dynamic_growth_steps = 5)
  fn <- function(p) sum((p - 2)^2)
  gr <- function(p) 2 * (p - 2)
  fit <- rmsprop_minimize(c(0, 1), fn, gr, optimizer = make(), control = list(maxit = 12, reltol = 0))
  # by hand: the scale grows (x2 every 5 finite steps), so read it at every step
  opt <- make()
  par <- c(0, 1)
  for (i in 1:12) {
    scale <- as.numeric(reticulate::py_to_r(opt$scale_loss(1)))
    par <- optimizer_apply(opt, gr(par) * scale, par)
  }
  expect_identical(fit$par, par)
  expect_identical(as.numeric(reticulate::py_to_r(fit$optimizer$scale_loss(1))), 4096)
})

test_that("a non-finite fn or gr value is an error naming the step", {
  skip_if_no_engine()
  fn <- function(p) if (p[[1]] < 0.9) NaN else sum(p^2)
  e <- expect_error(rmsprop_minimize(c(1, 2), fn, function(p) 2 * p,
                                     optimizer = optimizer_rmsprop(0.1)),
                    class = "rmsprop_nonfinite_error")
  expect_match(conditionMessage(e), "`fn` returned NaN at step 1 (after 1 optimizer step)", fixed = TRUE)
  gr <- function(p) list(w = 2 * p$w, b = if (p$b[[1]] < 0.75) c(1, Inf) else 2 * p$b)
  e <- expect_error(rmsprop_minimize(list(w = 1, b = c(1, 1)), function(p) sum(unlist(p)^2), gr,
                                     optimizer = optimizer_rmsprop(0.1)),
                    class = "rmsprop_nonfinite_error")
  expect_match(conditionMessage(e), "`gr` returned Inf at step 2 in element 'b' at position 2",
               fixed = TRUE)
  e <- expect_error(rmsprop_minimize(1, function(p) NA_real_, function(p) p),
                    class = "rmsprop_nonfinite_error")
  expect_match(conditionMessage(e), "at step 0 (at the starting `par`)", fixed = TRUE)
})

test_that("bad arguments are errors naming them, before any step", {
  skip_if_no_engine()
  opt <- optimizer_rmsprop()
  fn <- function(p) sum(p^2)
  gr <- function(p) 2 * p
  expect_error(rmsprop_minimize(1, fn, gr, optimizer = opt, control = list(maxiter = 3)),
               "unknown setting `maxiter`", class = "rmsprop_argument_error")
  expect_error(rmsprop_minimize(1, fn, gr, optimizer = opt, control = list(maxit = 0)),
               "control$maxit", fixed = TRUE, class = "rmsprop_argument_error")
  expect_error(rmsprop_minimize(1, fn, gr, optimizer = opt, control = list(reltol = -1)),
               "control$reltol", fixed = TRUE, class = "rmsprop_argument_error")
  expect_error(rmsprop_minimize("a", fn, gr, optimizer = opt), "`par`",
               class = "rmsprop_argument_error")
  expect_error(rmsprop_minimize(1, "fn", gr, optimizer = opt), "`fn`",
               class = "rmsprop_argument_error")
  expect_error(rmsprop_minimize(1, function(p) c(1, 2), gr, optimizer = opt),
               "`fn` must return a single number", class = "rmsprop_argument_error")
  expect_identical(opt$iterations, 0L)
})

test_that("every, callback and continuing with the returned optimizer", {
  skip_if_no_engine()
  seen <- integer()
  cb <- function(step, par, value) {
    seen <<- c(seen, step)
    step < 20
  }
  fn <- function(p) sum(p^2)
  gr <- function(p) 2 * p
  fit <- rmsprop_minimize(c(3, 4), fn, gr, control = list(maxit = 100, every = 5, callback = cb,
                                                           reltol = 0))
  expect_identical(seen, c(5L, 10L, 15L, 20L))
  expect_identical(fit$convergence, 2L)
  expect_identical(fit$steps, 20L)
  expect_identical(fit$history$step, c(0L, 5L, 10L, 15L, 20L))
  more <- rmsprop_minimize(fit$par, fn, gr, optimizer = fit$optimizer,
                           control = list(maxit = 10, reltol = 0))
  expect_identical(more$optimizer$iterations, 30L)
  expect_identical(more$par, hand_loop(c(3, 4), gr, optimizer_rmsprop(), 30))
})

test_that("print(), summary(), plot() and coef() work", {
  skip_if_no_engine()
  fit <- rmsprop_minimize(matrix(c(1, 2, 3, 4), 2), function(p) sum(p^2), function(p) 2 * p,
                          optimizer = optimizer_rmsprop(0.1), control = list(maxit = 30))
  expect_identical(dim(fit$par), c(2L, 2L))
  expect_identical(coef(fit), as.vector(fit$par))
  expect_output(print(fit), "<rmsprop_minimize> stopped after 30 steps: maxit (30) reached",
                fixed = TRUE)
  s <- summary(fit)
  expect_s3_class(s, "summary.rmsprop_minimize")
  expect_output(print(s), "calls of fn: 31, of gr: 30", fixed = TRUE)
  expect_output(print(s), "RMSprop")
  grDevices::pdf(NULL)
  on.exit(grDevices::dev.off())
  expect_invisible(plot(fit))
})
