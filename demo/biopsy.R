# The main job: train a small neural network on a real data set from R with
# optimizer_rmsprop() + optimizer_apply(), compare configurations, plot the
# loss curves, and check that the Python engine driven directly gives the
# same curve; then fit a logistic regression with rmsprop_minimize() beside
# glm(). Run with `make demo` from the checkout (which installs what is
# missing first), or demo("biopsy", package = "rmsprop") once installed.
# The plot goes to $RMSPROP_DEMO_OUT (out/demo with `make demo`), or to a
# temporary folder.
#
# Data: MASS::biopsy, 699 breast-cancer biopsies (9 cytology scores, benign or
# malignant), shipped with R. Model: 9 -> 8 (tanh) -> 1 (sigmoid), mean binary
# cross-entropy, full-batch gradients computed in R.

suppressPackageStartupMessages(library(rmsprop))
if (!requireNamespace("MASS", quietly = TRUE)) stop("this demo needs the MASS package")

out_dir <- Sys.getenv("RMSPROP_DEMO_OUT", file.path(tempdir(), "rmsprop-demo"))
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)

# ---- data --------------------------------------------------------------------
data("biopsy", package = "MASS")
biopsy <- stats::na.omit(biopsy)
x <- as.matrix(biopsy[, paste0("V", 1:9)])
y <- as.numeric(biopsy$class == "malignant")

set.seed(2026)
train <- sample(nrow(x), size = round(0.7 * nrow(x)))
center <- colMeans(x[train, ])
scale <- apply(x[train, ], 2, stats::sd)
standardize <- function(m) sweep(sweep(m, 2, center), 2, scale, "/")
x_train <- standardize(x[train, ])
y_train <- y[train]
x_test <- standardize(x[-train, ])
y_test <- y[-train]
cat(sprintf("biopsy: %d train / %d test rows, %d features, %.0f%% malignant\n",
            nrow(x_train), nrow(x_test), ncol(x_train), 100 * mean(y)))

# ---- model -------------------------------------------------------------------
hidden <- 8L
init_params <- function() {
  set.seed(1)
  list(
    w1 = matrix(stats::rnorm(ncol(x_train) * hidden, sd = 0.3), ncol(x_train), hidden),
    b1 = rep(0, hidden),
    w2 = matrix(stats::rnorm(hidden, sd = 0.3), hidden, 1),
    b2 = 0
  )
}

forward <- function(p, x) {
  h <- tanh(sweep(x %*% p$w1, 2, p$b1, "+"))
  z <- drop(h %*% p$w2) + p$b2
  list(h = h, prob = 1 / (1 + exp(-z)))
}

loss_and_grads <- function(p, x, y) {
  f <- forward(p, x)
  prob <- pmin(pmax(f$prob, 1e-12), 1 - 1e-12)
  loss <- -mean(y * log(prob) + (1 - y) * log(1 - prob))
  dz <- (f$prob - y) / length(y)                 # d loss / d logit
  dh <- outer(dz, drop(p$w2)) * (1 - f$h^2)
  grads <- list(
    w1 = crossprod(x, dh),
    b1 = colSums(dh),
    w2 = crossprod(f$h, dz),
    b2 = sum(dz)
  )
  list(loss = loss, grads = grads)
}

accuracy <- function(p, x, y) mean((forward(p, x)$prob > 0.5) == (y == 1))

# ---- configurations ----------------------------------------------------------
steps <- 300L
configs <- list(
  "default (lr 0.001)" = function() optimizer_rmsprop(),
  "lr 0.01" = function() optimizer_rmsprop(learning_rate = 0.01),
  "centered" = function() optimizer_rmsprop(learning_rate = 0.01, centered = TRUE),
  "momentum 0.9" = function() optimizer_rmsprop(learning_rate = 0.01, momentum = 0.9),
  "exponential decay" = function() optimizer_rmsprop(
    learning_rate = learning_rate_schedule_exponential_decay(0.05, decay_steps = 50,
                                                             decay_rate = 0.5)),
  "EMA (overwrite every 50)" = function() optimizer_rmsprop(
    learning_rate = 0.01, use_ema = TRUE, ema_momentum = 0.9, ema_overwrite_frequency = 50)
)

train_model <- function(make_optimizer, label) {
  optimizer <- make_optimizer()
  params <- init_params()
  losses <- numeric(steps)
  started <- proc.time()[["elapsed"]]
  for (step in seq_len(steps)) {
    lg <- loss_and_grads(params, x_train, y_train)
    losses[step] <- lg$loss
    params <- optimizer_apply(optimizer, lg$grads, params)
    if (step %% 100 == 0) {
      cat(sprintf("  %-26s step %3d  loss %.4f\n", label, step, lg$loss))
    }
  }
  # With EMA, Keras ends training on the moving averages of the weights.
  if (optimizer$use_ema) params <- optimizer_finalize(optimizer, params)
  list(losses = losses, params = params,
       seconds = proc.time()[["elapsed"]] - started)
}

cat(sprintf("\nTraining %d configurations for %d full-batch steps each\n",
            length(configs), steps))
results <- Map(train_model, configs, names(configs))

table <- data.frame(
  configuration = names(results),
  final_train_loss = vapply(results, function(r) tail(r$losses, 1), numeric(1)),
  test_accuracy = vapply(results, function(r) accuracy(r$params, x_test, y_test), numeric(1)),
  seconds = vapply(results, function(r) r$seconds, numeric(1)),
  row.names = NULL
)
cat("\n")
print(format(table, digits = 4), row.names = FALSE)

# ---- plot --------------------------------------------------------------------
plot_path <- file.path(out_dir, "loss_curves.png")
grDevices::png(plot_path, width = 900, height = 560, res = 110)
colours <- grDevices::hcl.colors(length(results), "Dark 3")
all_losses <- unlist(lapply(results, `[[`, "losses"))
graphics::plot(NA, xlim = c(1, steps), ylim = range(all_losses), log = "y",
               xlab = "step", ylab = "training loss (log scale)",
               main = "RMSprop configurations on MASS::biopsy (9-8-1 network)")
for (i in seq_along(results)) {
  graphics::lines(results[[i]]$losses, col = colours[i], lwd = 2)
}
graphics::legend("bottomleft", legend = names(results), col = colours, lwd = 2, bty = "n")
invisible(grDevices::dev.off())
cat(sprintf("\nLoss curves written to %s\n", normalizePath(plot_path)))

# ---- the same run through the Python engine directly -------------------------
# optimizer_apply() is a thin layer over the engine; driving the engine's own
# RMSprop and Variables from here must give the identical curve.
engine <- reticulate::import("rmsprop")
label <- "momentum 0.9"
direct <- engine$RMSprop(learning_rate = 0.01, momentum = 0.9)
params <- init_params()
variables <- lapply(names(params), function(n) rmsprop_variable(params[[n]], dtype = "float64", name = n))
direct$build(variables, compute_dtype = "float64")
direct_losses <- numeric(steps)
as_r <- function(v, like) {
  value <- as.array(v)
  attributes(value) <- attributes(like)
  value
}
for (step in seq_len(steps)) {
  current <- Map(as_r, variables, params)
  names(current) <- names(params)
  lg <- loss_and_grads(current, x_train, y_train)
  direct_losses[step] <- lg$loss
  direct$apply(unname(lg$grads), variables)
}
same <- identical(direct_losses, results[[label]]$losses)
cat(sprintf("R optimizer_apply() vs Python engine directly (%s): loss curves %s (max |diff| = %g)\n",
            label, if (same) "IDENTICAL" else "DIFFER",
            max(abs(direct_losses - results[[label]]$losses))))
if (!same) stop("the R and Python loss curves differ")

# ---- rmsprop_minimize() beside glm() -------------------------------------------
# A logistic regression on the same standardized features: glm() solves it
# by iteratively reweighted least squares, rmsprop_minimize() by RMSprop
# steps with a decaying learning rate. Both reach the same coefficients.
design <- cbind(1, x_train)
nll <- function(beta, X, y) {
  eta <- drop(X %*% beta)
  sum(log1p(exp(eta)) - y * eta) / length(y)
}
nll_grad <- function(beta, X, y) drop(crossprod(X, stats::plogis(drop(X %*% beta)) - y)) / length(y)
started <- proc.time()[["elapsed"]]
fit <- rmsprop_minimize(
  stats::setNames(rep(0, ncol(design)), c("(Intercept)", colnames(x_train))),
  nll, nll_grad, X = design, y = y_train,
  optimizer = optimizer_rmsprop(
    learning_rate = learning_rate_schedule_exponential_decay(0.1, decay_steps = 50, decay_rate = 0.7)),
  control = list(maxit = 1000, reltol = 0, every = 50))
seconds <- proc.time()[["elapsed"]] - started
reference <- stats::glm(y_train ~ x_train, family = stats::binomial(),
                        control = list(epsilon = 1e-12, maxit = 100))
cat(sprintf("
Logistic regression: rmsprop_minimize() (%d steps, %.1f s) beside glm()
",
            fit$steps, seconds))
print(round(cbind(rmsprop_minimize = coef(fit), glm = unname(stats::coef(reference))), 6))
cat(sprintf("max |difference| = %.2g; loss %.6f (rmsprop_minimize) vs %.6f (glm)
",
            max(abs(coef(fit) - stats::coef(reference))), fit$value,
            nll(stats::coef(reference), design, y_train)))
