# The R path: rmsprop::optimizer_apply() on R values against a hand-written,
# vectorized RMSprop in plain R (same hyperparameters, float64 like R).
#
#   Rscript bench/r_bench.R [--quick] [--json out/bench/r_results.json]
#
# Run by bench/run.py (`make bench`). Skips with a message (exit status 0)
# when library(rmsprop) fails. Each candidate is timed in its steady state:
# run alone first (one long block of consecutive steps), then in rounds, one
# block of consecutive steps per candidate per round, the order alternating;
# the first step of each block is dropped and the median step is reported.
# Tiny steps are timed in batches (time / batch size). Gradients have
# realistic scales (normal values times 10^u, u uniform in [-3, 0]).
# Targets (issue 13, informational): a 10-number step at most 50 us;
# optimizer_apply() at least 3x faster than the hand-written R for 20 x 50,000
# and at least 2x for 1 x 2,000,000.

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

# R counts collection time only once timing is on: in a fresh session
# gc.time() stays at zero (starting Python through reticulate happens to
# turn it on, which the GC shares below must not depend on).
invisible(gc.time(on = TRUE))

# Seconds of each of `steps` consecutive samples of `f`, a sample timing
# `batch` calls (time / batch); attribute "gc": the seconds of R's garbage
# collections (gc.time(), CPU) during the block, "total": its seconds.
timed_block <- function(f, steps, batch) {
  out <- numeric(steps)
  gc0 <- gc.time()[[1L]]
  start <- now()
  for (s in seq_len(steps)) {
    t0 <- now()
    for (k in seq_len(batch)) f()
    out[s] <- (now() - t0) / batch
  }
  structure(out, gc = gc.time()[[1L]] - gc0, total = now() - start)
}

# list(alone = median seconds per step run alone, run = median in the rounds,
# gc_share = the share of the rounds' time spent in R's garbage collector).
time_blocks <- function(steps, rounds, block, batch, warmup = 3L) {
  alone <- lapply(steps, function(f) {
    timed_block(f, warmup, batch)
    stats::median(timed_block(f, 2L * block, batch)[-1L])
  })
  samples <- lapply(steps, function(f) numeric(0))
  gc_time <- total <- numeric(length(steps))
  for (r in seq_len(rounds)) {
    order <- if (r %% 2L) seq_along(steps) else rev(seq_along(steps))
    for (j in order) {
      times <- timed_block(steps[[j]], block, batch)
      samples[[j]] <- c(samples[[j]], times[-1L])
      gc_time[j] <- gc_time[j] + attr(times, "gc")
      total[j] <- total[j] + attr(times, "total")
    }
  }
  list(alone = unlist(alone), run = vapply(samples, stats::median, numeric(1)),
       gc_share = gc_time / total)
}

# What a step cannot go below: reticulate's call of a Python function that
# does nothing, with the arguments optimizer_apply() passes for one
# 10-number parameter sent again (median us over blocks of 1,000 calls).
bare_call_us <- function(opt) {
  noop <- reticulate::py_run_string("def _noop(*args): return None", convert = FALSE)[["_noop"]]
  value <- array(rnorm(10), 10L)
  call <- function() reticulate::py_call(noop, opt, list(value), NULL, "float64", NULL,
                                         list(NULL, value), 1L, 2L, TRUE)
  stats::median(timed_block(call, 9L, 1000L)) * 1e6
}

cases <- list(
  list(name = "1 x 10", n = 1L, size = 10L, batch = 100L, block = 10L, rounds = 7L,
       target = "<= 50 us/step", check = function(engine, hand) engine <= 50e-6),
  list(name = "20 x 50,000", n = 20L, size = 50000L, batch = 1L, block = 10L, rounds = 7L,
       target = ">= 3x faster than hand-written", check = function(engine, hand) hand / engine >= 3),
  list(name = "1 x 2,000,000", n = 1L, size = 2000000L, batch = 1L, block = 8L, rounds = 7L,
       target = ">= 2x faster than hand-written", check = function(engine, hand) hand / engine >= 2)
)

set.seed(1)
results <- list()
for (case in cases) {
  rounds <- if (quick) 3L else case$rounds
  batch <- case$batch
  block <- if (quick) max(4L, case$block %/% 2L) else case$block
  params0 <- lapply(seq_len(case$n), function(i) rnorm(case$size))
  grads <- lapply(seq_len(case$n), function(i) rnorm(case$size) * 10^runif(case$size, -3, 0))

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

  timing <- time_blocks(list(engine = engine_step, hand = hand_step), rounds, block, batch)
  t <- timing$run
  alone <- timing$alone
  gc_share <- timing$gc_share
  drift <- pmax(alone, t) / pmin(alone, t)
  ok <- case$check(t[["engine"]], t[["hand"]])
  results[[length(results) + 1L]] <- list(
    case = case$name, engine_us = t[["engine"]] * 1e6, hand_us = t[["hand"]] * 1e6,
    engine_alone_us = alone[["engine"]] * 1e6, hand_alone_us = alone[["hand"]] * 1e6,
    flagged = any(drift > 1.2),
    hand_over_engine = t[["hand"]] / t[["engine"]], target = case$target,
    engine_gc_share = gc_share[[1L]], hand_gc_share = gc_share[[2L]],
    bare_call_us = if (case$size <= 10L) bare_call_us(opt) else NULL,
    ok = ok, rounds = rounds, block = block, batch = batch, max_abs_diff = diff)
  rm(engine_params, hand_params, params0, grads, opt, hand)
  invisible(gc())
}

lines <- c(
  sprintf("R path: %s, rmsprop %s, %s", R.version.string,
          as.character(utils::packageVersion("rmsprop")), if (quick) "quick" else "full"),
  paste("Median us per step in steady state (blocks of consecutive steps, alternating):",
        "optimizer_apply() vs hand-written vectorized R RMSprop (float64);"),
  "(alone) = run alone before the rounds, '!' when alone and run differ by more than 20%.",
  "gc = share of the rounds' time in R's garbage collector (gc.time()), each candidate.",
  "",
  sprintf("%-14s %16s %14s %6s %14s %14s %6s %11s  %s", "params", "optimizer_apply",
          "(alone)", "gc", "hand-written", "(alone)", "gc", "hand/apply", "target"),
  sprintf("%-14s %16s %14s %6s %14s %14s %6s %11s  %s", strrep("-", 14), strrep("-", 16),
          strrep("-", 14), strrep("-", 6), strrep("-", 14), strrep("-", 14), strrep("-", 6),
          strrep("-", 11), strrep("-", 36)))
for (r in results) {
  lines <- c(lines, sprintf("%-14s %16.1f %14s %5.0f%% %14.1f %14s %5.0f%% %11.2f  %s %s", r$case,
                            r$engine_us,
                            sprintf("%.1f%s", r$engine_alone_us, if (r$flagged) " !" else ""),
                            100 * r$engine_gc_share, r$hand_us,
                            sprintf("%.1f", r$hand_alone_us), 100 * r$hand_gc_share,
                            r$hand_over_engine, if (r$ok) "PASS" else "MISS", r$target))
}
for (r in results) {
  if (!is.null(r$bare_call_us)) {
    lines <- c(lines, sprintf(paste("(%s: reticulate's call alone of a no-op Python function",
                                    "with the step's arguments: %.1f us)"),
                              r$case, r$bare_call_us))
  }
}
cat(lines, sep = "\n")
cat("\n")
write_json(list(skipped = FALSE, results = results, table = paste(lines, collapse = "\n")))
