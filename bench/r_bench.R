# The R path: rmsprop::optimizer_apply() on R values against a hand-written,
# vectorized RMSprop in plain R (same hyperparameters, float64 like R).
#
#   Rscript bench/r_bench.R [--quick] [--json out/bench/r_results.json]
#
# Run by bench/run.py (`make bench`). Skips with a message (exit status 0)
# when library(rmsprop) fails. Times are medians of repeated timings, the two
# candidates interleaved; tiny steps are timed in batches (time / batch size).
# Targets (informational): optimizer_apply() at least 2x faster than the
# hand-written R for 20 x 50,000 and 1 x 2,000,000; at most 150 us per step
# for 1 x 10.

args <- commandArgs(trailingOnly = TRUE)
quick <- "--quick" %in% args
json_path <- NULL
if ("--json" %in% args) {
  i <- match("--json", args)
  if (i < length(args)) json_path <- args[[i + 1L]]
}

write_json <- function(x) {
  if (is.null(json_path)) return(invisible())
  dir.create(dirname(json_path), recursive = TRUE, showWarnings = FALSE)
  if (requireNamespace("jsonlite", quietly = TRUE)) {
    writeLines(jsonlite::toJSON(x, auto_unbox = TRUE, digits = NA, null = "null",
                                pretty = TRUE), json_path)
  }
}

skip <- function(why) {
  message <- paste0("R: skipped (", why, ")")
  cat(message, "\n", sep = "")
  write_json(list(skipped = TRUE, message = message))
  quit(save = "no", status = 0)
}

loaded <- tryCatch({
  suppressPackageStartupMessages(library(rmsprop))
  TRUE
}, error = function(e) conditionMessage(e))
if (!isTRUE(loaded)) skip(paste("library(rmsprop) failed:", loaded))
if (!exists("optimizer_apply", mode = "function") ||
    !exists("optimizer_rmsprop", mode = "function")) {
  skip("the rmsprop package has no optimizer_apply()/optimizer_rmsprop() yet")
}

LR <- 0.001
RHO <- 0.9
EPS <- 1e-7

# Hand-written RMSprop: one vectorized expression per formula line, state
# kept in a list, exactly what an R user would write without the package.
hand_rmsprop <- function(params) {
  velocity <- lapply(params, function(p) p * 0)
  function(grads, params) {
    for (i in seq_along(params)) {
      g <- grads[[i]]
      v <- RHO * velocity[[i]] + (1 - RHO) * g^2
      velocity[[i]] <<- v
      params[[i]] <- params[[i]] - LR * g / sqrt(v + EPS)
    }
    params
  }
}

now <- function() as.numeric(Sys.time())

# Median seconds per step, candidates interleaved round by round; each
# sample times `batch` consecutive steps.
time_interleaved <- function(steps, rounds, batch, warmup = 3L) {
  for (f in steps) for (k in seq_len(warmup)) f()
  samples <- lapply(steps, function(f) numeric(rounds))
  for (r in seq_len(rounds)) {
    order <- if (r %% 2L) seq_along(steps) else rev(seq_along(steps))
    for (j in order) {
      f <- steps[[j]]
      t0 <- now()
      for (k in seq_len(batch)) f()
      samples[[j]][r] <- (now() - t0) / batch
    }
  }
  vapply(samples, stats::median, numeric(1))
}

cases <- list(
  list(name = "1 x 10", n = 1L, size = 10L, batch = 200L, rounds = 31L,
       target = "<= 150 us/step", check = function(engine, hand) engine <= 150e-6),
  list(name = "20 x 50,000", n = 20L, size = 50000L, batch = 1L, rounds = 41L,
       target = ">= 2x faster than hand-written", check = function(engine, hand) hand / engine >= 2),
  list(name = "1 x 2,000,000", n = 1L, size = 2000000L, batch = 1L, rounds = 31L,
       target = ">= 2x faster than hand-written", check = function(engine, hand) hand / engine >= 2)
)

set.seed(1)
results <- list()
for (case in cases) {
  rounds <- if (quick) max(7L, case$rounds %/% 4L) else case$rounds
  batch <- if (quick) max(1L, case$batch %/% 4L) else case$batch
  params0 <- lapply(seq_len(case$n), function(i) rnorm(case$size))
  grads <- lapply(seq_len(case$n), function(i) rnorm(case$size) * 0.01)

  opt <- optimizer_rmsprop(learning_rate = LR, rho = RHO, epsilon = EPS)
  engine_params <- params0
  engine_step <- function() engine_params <<- optimizer_apply(opt, grads, engine_params)

  hand <- hand_rmsprop(params0)
  hand_params <- params0
  hand_step <- function() hand_params <<- hand(grads, hand_params)

  engine_step()  # builds the optimizer
  hand_step()
  # The two must agree (float64 both; sanity check, not a test).
  diff <- max(abs(unlist(engine_params) - unlist(hand_params)))

  t <- time_interleaved(list(engine = engine_step, hand = hand_step), rounds, batch)
  ok <- case$check(t[["engine"]], t[["hand"]])
  results[[length(results) + 1L]] <- list(
    case = case$name, engine_us = t[["engine"]] * 1e6, hand_us = t[["hand"]] * 1e6,
    hand_over_engine = t[["hand"]] / t[["engine"]], target = case$target,
    ok = ok, rounds = rounds, batch = batch, max_abs_diff = diff)
  rm(engine_params, hand_params, params0, grads, opt, hand)
  invisible(gc())
}

lines <- c(
  sprintf("R path: %s, rmsprop %s, %s", R.version.string,
          as.character(utils::packageVersion("rmsprop")), if (quick) "quick" else "full"),
  "Median us per step (interleaved): optimizer_apply() vs hand-written vectorized R RMSprop (float64).",
  "",
  sprintf("%-14s %16s %14s %11s  %s", "params", "optimizer_apply", "hand-written",
          "hand/apply", "target"),
  sprintf("%-14s %16s %14s %11s  %s", strrep("-", 14), strrep("-", 16), strrep("-", 14),
          strrep("-", 11), strrep("-", 36)))
for (r in results) {
  lines <- c(lines, sprintf("%-14s %16.1f %14.1f %11.2f  %s %s", r$case, r$engine_us, r$hand_us,
                            r$hand_over_engine, if (r$ok) "PASS" else "MISS", r$target))
}
cat(lines, sep = "\n")
cat("\n")
write_json(list(skipped = FALSE, results = results, table = paste(lines, collapse = "\n")))
