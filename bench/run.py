#!/usr/bin/env python
"""Benchmark suite for the rmsprop engine (`make bench`).

Times, per workload, each candidate in its steady state:

  * this engine on `rmsprop.Variable`s and on plain NumPy arrays, with each
    update kernel it has (the NumPy reference path and, when built, the
    compiled one; `rmsprop.kernel_info()`), on one thread and on its default
    number of threads;
  * the engine's NumPy update rule alone on flat arrays (the floor of the
    NumPy path: its passes without any gathering or checks);
  * a straightforward NumPy RMSprop, one expression per formula line;
  * `torch.optim.RMSprop(foreach=True)` on one thread and on torch's default
    number of threads, when torch is importable;
  * optax's RMSprop under `jax.jit` on the CPU, when jax and optax are
    importable (skipped otherwise);
  * the memory limit: the time `np.copyto` needs for a params-sized buffer
    (2 streams: one read, one write), scaled to the streams the update touches
    (5 for plain RMSprop: read p, g, v; write p, v -- 9 for centered with
    momentum: read p, g, v, a, m; write p, v, a, m).  limit = copy * streams / 2.

How it times (steady state): every candidate first runs alone -- warm-up, then
one long block of consecutive steps ("alone").  Then the candidates run in
rounds; in each round every candidate runs one block of consecutive steps, the
order rotating from round to round ("run").  Each step is timed; the first step
of each block is dropped (it pays for the switch from the previous candidate),
and a candidate's time is the median of its steps.  Timing candidates step by
step, interleaved, measures their temporaries being re-faulted after each other
candidate's allocations rather than their steady state (torch's step on 8M
floats is about 10x slower that way).  The report shows both times and flags
a candidate whose "alone" and "run" times differ by more than 20%: its figure
is then not to be trusted in that run.

Gradients have realistic scales: normal values times 10^u, u uniform in
[-3, 0] per element (1e-3 to 1).

Peak transient memory per step is measured with tracemalloc on a warm
candidate (torch and XLA allocate outside Python's allocator: reported as n/a).
Then bench/r_bench.R is run with Rscript for the R path (`optimizer_apply()`),
if R is available.

Results: printed, and written to out/bench/results.json and out/bench/results.md.
Targets (issue 13) are informational: a miss is reported, never an error exit.
The machine may be shared and noisy: compare ratios within one run, and
repeat a run before believing a ratio.

    .venv/bin/python bench/run.py [--quick] [--only W1,W3] [--no-r] [--no-torch]
"""

import argparse
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))

import rmsprop  # noqa: E402
from rmsprop import kernels  # noqa: E402
from rmsprop.config import floatx_scope  # noqa: E402

try:
    import torch
except Exception as error:  # noqa: BLE001 - any import failure means "no torch"
    torch = None
    TORCH_ERROR = f"{type(error).__name__}: {error}"
else:
    TORCH_ERROR = None
    TORCH_DEFAULT_THREADS = torch.get_num_threads()

try:
    import jax
    import optax
except Exception as error:  # noqa: BLE001 - any import failure means "no optax"
    jax = optax = None
    OPTAX_ERROR = f"{type(error).__name__}: {error}"
else:
    OPTAX_ERROR = None

OUT = ROOT / "out" / "bench"
LR, RHO, EPS = 0.001, 0.9, 1e-7
MB = 1e6
FLAG_RATIO = 1.2        # "alone" and "run" differing by more than 20%

# name, description, shapes, dtype, centered, momentum, targets (issue 13):
# mem = max ratio to the memory limit; torch = min ratio torch/engine, both on
# one thread.
WORKLOADS = [
    dict(name="W1", what="1 tensor of 8,000,000, float32", shapes=[(8_000_000,)],
         dtype="float32", centered=False, momentum=0.0, targets=dict(mem=1.4, torch=1.5)),
    dict(name="W2", what="500 tensors of 1,000, float32", shapes=[(1_000,)] * 500,
         dtype="float32", centered=False, momentum=0.0, targets=dict(mem=2.5, torch=10.0)),
    dict(name="W3", what="100 matrices of 100x100, float32", shapes=[(100, 100)] * 100,
         dtype="float32", centered=False, momentum=0.0, targets=dict(mem=2.0, torch=3.0)),
    dict(name="W4", what="1 tensor of 8,000,000, float32, centered, momentum 0.9",
         shapes=[(8_000_000,)], dtype="float32", centered=True, momentum=0.9,
         targets=dict(mem=1.4, torch=2.0)),
    dict(name="W5", what="1 tensor of 8,000,000, float64 (W1 in float64)",
         shapes=[(8_000_000,)], dtype="float64", centered=False, momentum=0.0,
         targets=dict(mem=1.4, torch=1.5)),
]

TORCH_1 = "torch foreach, 1 thread"
COPY = "memcopy (np.copyto)"


def streams(workload):
    """Memory streams of one update: read p, g, v; write p, v; +2 per extra slot."""
    return 5 + 2 * (workload["centered"] + (workload["momentum"] > 0))


def engine_kernels():
    """The update kernels this engine can run ("numpy", and "compiled" when built)."""
    info = getattr(rmsprop, "kernel_info", None)
    if info is None:
        return ["numpy"]
    return list(info()["available"])


def engine_default_threads():
    info = getattr(rmsprop, "kernel_info", None)
    return 1 if info is None else int(info()["default_threads"])


class Candidate:
    """A step to time, and what to set before a block of its steps (`enter`:
    global settings such as thread counts, shared with other candidates)."""

    def __init__(self, step, enter=None, traced=True, targets=False):
        self.step = step
        self.enter = enter or (lambda: None)
        self.traced = traced        # its allocations are visible to tracemalloc
        self.targets = targets      # the one-thread targets apply to it


# ---------------------------------------------------------------------------
# Candidates
# ---------------------------------------------------------------------------
def engine_settings(kernel, threads):
    def enter():
        if hasattr(rmsprop, "set_kernel"):
            rmsprop.set_kernel(kernel)
            rmsprop.set_num_threads(threads)
    return enter


def make_engine(workload, params, grads, as_variables):
    # float64 workloads are built under floatx=float64, so that they compute
    # (and store their learning rate) in float64, as Keras does with that policy.
    with floatx_scope(workload["dtype"]):
        if as_variables:
            params = [rmsprop.Variable(p, name=f"w{i}") for i, p in enumerate(params)]
        opt = rmsprop.RMSprop(learning_rate=LR, rho=RHO, epsilon=EPS,
                              momentum=workload["momentum"], centered=workload["centered"])
        opt.build(params)

    def step():
        opt.apply(grads, params)
    return step


def make_update_math(workload, params, grads):
    """The engine's NumPy rule alone, on one flat array per stream with nothing
    to gather, check or store: what a NumPy-path step costs at least, whatever
    its bookkeeping (a floor to read the NumPy rows against; no targets)."""
    dtype = np.dtype(workload["dtype"])
    param = np.concatenate([p.reshape(-1) for p in params])
    grad = np.concatenate([g.reshape(-1) for g in grads])
    total = param.size
    velocity = np.zeros(total, dtype)
    average = np.zeros(total, dtype) if workload["centered"] else None
    momentum = np.zeros(total, dtype) if workload["momentum"] > 0 else None
    scalars = [np.asarray(dtype.type(x))
               for x in (LR, RHO, 1 - RHO, EPS, workload["momentum"])]
    scratch = kernels.ChunkScratch.empty(dtype)

    def step():
        kernels.rmsprop_rule(param, grad, velocity, average, momentum, *scalars, scratch)
    return step


def make_numpy(workload, params, grads):
    """The textbook version: one NumPy expression per line of the formula."""
    centered, momentum = workload["centered"], workload["momentum"]
    vel = [np.zeros_like(p) for p in params]
    avg = [np.zeros_like(p) for p in params] if centered else None
    mom = [np.zeros_like(p) for p in params] if momentum > 0 else None
    lr, rho, eps = LR, RHO, EPS

    def step():
        for i, (p, g) in enumerate(zip(params, grads)):
            v = vel[i]
            v[...] = rho * v + (1 - rho) * g ** 2
            if centered:
                a = avg[i]
                a[...] = rho * a + (1 - rho) * g
                denominator = v - a ** 2 + eps
            else:
                denominator = v + eps
            increment = lr * g / np.sqrt(denominator)
            if momentum > 0:
                m = mom[i]
                m[...] = momentum * m + increment
                p -= m
            else:
                p -= increment
    return step


def make_torch(workload, params, grads):
    tensors = []
    for p, g in zip(params, grads):
        t = torch.nn.Parameter(torch.from_numpy(p))
        t.grad = torch.from_numpy(g.copy())
        tensors.append(t)
    opt = torch.optim.RMSprop(tensors, lr=LR, alpha=RHO, eps=EPS, momentum=workload["momentum"],
                              centered=workload["centered"], foreach=True)

    def step():
        opt.step()
    return step


def make_optax(workload, params, grads):
    """optax.rmsprop (its `decay` is rho; eps is added inside the root as Keras
    does) under jax.jit on the CPU, parameters and state donated back."""
    # float64 needs jax's x64 mode; without it jax would silently use float32.
    if workload["dtype"] == "float64" and not jax.config.read("jax_enable_x64"):
        return None
    transform = optax.rmsprop(LR, decay=RHO, eps=EPS, centered=workload["centered"],
                              momentum=workload["momentum"] or None)
    cpu = jax.devices("cpu")[0]
    state = {"params": [jax.device_put(p, cpu) for p in params]}
    gs = [jax.device_put(g, cpu) for g in grads]
    state["opt"] = transform.init(state["params"])

    @jax.jit
    def update(ps, opt_state, gs):
        updates, opt_state = transform.update(gs, opt_state, ps)
        return optax.apply_updates(ps, updates), opt_state

    def step():
        ps, opt_state = update(state["params"], state["opt"], gs)
        jax.block_until_ready(ps)
        state["params"], state["opt"] = ps, opt_state
    return step


def make_copy(workload, total):
    source = np.random.default_rng(1).standard_normal(total).astype(workload["dtype"])
    target = np.empty_like(source)

    def step():
        np.copyto(target, source)
    return step


def torch_threads(n):
    def enter():
        torch.set_num_threads(n)
    return enter


def candidates(workload, init, grads, have_torch, have_optax):
    fresh = lambda: [p.copy() for p in init]  # noqa: E731
    out = {}
    kernels_here = engine_kernels()
    threads = engine_default_threads()
    for kernel in kernels_here:
        label = f"engine {kernel}" if len(kernels_here) > 1 else "engine"
        out[f"{label} (Variable)"] = Candidate(
            make_engine(workload, fresh(), grads, True), engine_settings(kernel, 1), targets=True)
        out[f"{label} (arrays)"] = Candidate(
            make_engine(workload, fresh(), grads, False), engine_settings(kernel, 1),
            targets=True)
    if "compiled" in kernels_here and threads > 1:
        out[f"engine compiled, {threads} threads (Variable)"] = Candidate(
            make_engine(workload, fresh(), grads, True), engine_settings("compiled", threads))
    reset = engine_settings("numpy", 1) if "compiled" in kernels_here else None
    out["numpy rule alone (flat)"] = Candidate(make_update_math(workload, init, grads))
    out["numpy (one expr/line)"] = Candidate(make_numpy(workload, fresh(), grads), reset)
    if have_torch:
        out[TORCH_1] = Candidate(make_torch(workload, fresh(), grads), torch_threads(1),
                                 traced=False)
        counts = sorted({TORCH_DEFAULT_THREADS, threads} - {1})
        for n in counts:
            out[f"torch foreach, {n} threads"] = Candidate(
                make_torch(workload, fresh(), grads), torch_threads(n), traced=False)
    if have_optax:
        step = make_optax(workload, fresh(), grads)
        if step is not None:
            out["optax rmsprop (jax.jit, CPU)"] = Candidate(step, traced=False)
    out[COPY] = Candidate(make_copy(workload, sum(p.size for p in init)))
    return out


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------
def timed_block(candidate, steps):
    """Seconds of each of `steps` consecutive steps of one candidate."""
    clock = time.perf_counter
    step = candidate.step
    candidate.enter()
    times = []
    for _ in range(steps):
        t0 = clock()
        step()
        times.append(clock() - t0)
    return times


def measure(cands, rounds, block_seconds, warmup=3):
    """{name: (median alone, median in the run)} seconds per step, and the block
    length (steps) used for each candidate."""
    blocks, alone = {}, {}
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for name, candidate in cands.items():
            warm = timed_block(candidate, warmup)
            # Enough steps for a block of about `block_seconds`, at least 4.
            blocks[name] = int(min(200, max(4, block_seconds / max(min(warm), 1e-6))))
            alone[name] = float(np.median(timed_block(candidate, 2 * blocks[name])[1:]))
        names = list(cands)
        samples = {name: [] for name in names}
        for r in range(rounds):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].extend(timed_block(cands[name], blocks[name])[1:])
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: (alone[name], float(np.median(samples[name]))) for name in names}, blocks


def peak_transient(step):
    """Largest extra memory (bytes) held at once during one warm step."""
    gc.collect()
    tracemalloc.start()
    try:
        step()                          # anything lazily allocated is allocated now
        gc.collect()
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return max(0, peak - before)


def realistic_gradients(rng, shapes, dtype):
    """Normal values times 10^u, u uniform in [-3, 0]: magnitudes 1e-3 to 1."""
    return [(rng.standard_normal(s) * 10.0 ** rng.uniform(-3, 0, s)).astype(dtype)
            for s in shapes]


def run_workload(workload, quick, have_torch, have_optax):
    rng = np.random.default_rng(0)
    dtype = workload["dtype"]
    init = [rng.standard_normal(s).astype(dtype) for s in workload["shapes"]]
    grads = realistic_gradients(rng, workload["shapes"], dtype)
    total = sum(p.size for p in init)
    param_bytes = total * np.dtype(dtype).itemsize

    cands = candidates(workload, init, grads, have_torch, have_optax)
    rounds, block_seconds = (3, 0.05) if quick else (7, 0.15)
    times, blocks = measure(cands, rounds, block_seconds)

    copy_alone, copy_s = times.pop(COPY)
    limit_s = copy_s * streams(workload) / 2
    peaks = {}
    for name, candidate in cands.items():
        if name != COPY and candidate.traced:
            candidate.enter()
            peaks[name] = peak_transient(candidate.step)
    traits = {name: (c.targets, c.traced) for name, c in cands.items()}
    del cands
    gc.collect()

    torch_times = {name: s for name, (_, s) in times.items() if name.startswith("torch")}
    torch_1 = torch_times.get(TORCH_1)
    temp_limit = max(1 * MB, 0.05 * param_bytes)
    targets = workload["targets"]
    rows = []
    for name, (alone_s, seconds) in times.items():
        has_targets, traced = traits[name]
        drift = max(alone_s, seconds) / min(alone_s, seconds)
        row = dict(candidate=name, ms=seconds * 1e3, alone_ms=alone_s * 1e3,
                   flagged=drift > FLAG_RATIO, vs_memory_limit=seconds / limit_s,
                   torch_over_this=(torch_1 / seconds) if torch_1 else None,
                   torch_times={t: s / seconds for t, s in torch_times.items()},
                   peak_transient_mb=None if name not in peaks else peaks[name] / MB,
                   block=blocks[name], checks=[])
        if has_targets:
            row["checks"].append(dict(
                target=f"<= {targets['mem']:g}x mem limit",
                value=row["vs_memory_limit"], ok=row["vs_memory_limit"] <= targets["mem"]))
            ratio = row["torch_over_this"]
            row["checks"].append(dict(
                target=f">= {targets['torch']:g}x torch (1 thread)", value=ratio,
                ok=None if ratio is None else ratio >= targets["torch"]))
            row["checks"].append(dict(
                target=f"temp <= {temp_limit / MB:.2f} MB", value=row["peak_transient_mb"],
                ok=peaks[name] <= temp_limit))
        rows.append(row)
    rows.append(dict(candidate=f"memory limit (copy x {streams(workload)}/2)", ms=limit_s * 1e3,
                     alone_ms=copy_alone * streams(workload) / 2 * 1e3, flagged=False,
                     vs_memory_limit=1.0, torch_over_this=(torch_1 / limit_s) if torch_1 else None,
                     torch_times={t: s / limit_s for t, s in torch_times.items()},
                     peak_transient_mb=None, block=blocks[COPY], checks=[]))
    return dict(name=workload["name"], what=workload["what"], dtype=dtype,
                tensors=len(init), elements=total, param_mb=param_bytes / MB,
                streams=streams(workload), copy_ms=copy_s * 1e3, memory_limit_ms=limit_s * 1e3,
                rounds=rounds, rows=rows)


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------
def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def check_text(check):
    verdict = {True: "PASS", False: "MISS", None: "n/a"}[check["ok"]]
    return f"{verdict} {check['target']}"


HEADER = ["workload", "candidate", "ms/step", "alone ms", "x mem limit", "torch1/this",
          "peak MB", "targets"]


def table_rows(results):
    lines = []
    for w in results:
        for row in w["rows"]:
            lines.append([w["name"], row["candidate"], fmt(row["ms"], ".3f"),
                          fmt(row["alone_ms"], ".3f") + (" !" if row["flagged"] else ""),
                          fmt(row["vs_memory_limit"], ".2f"), fmt(row["torch_over_this"], ".2f"),
                          fmt(row["peak_transient_mb"], ".3f"),
                          "; ".join(check_text(c) for c in row["checks"])])
    return lines


def print_table(results):
    lines = table_rows(results)
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(HEADER)]
    right = {2, 3, 4, 5, 6}

    def render(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    print(render(HEADER))
    print("  ".join("-" * w for w in widths))
    previous = None
    for cells in lines:
        if previous is not None and cells[0] != previous:
            print()
        previous = cells[0]
        print(render(cells))


def threaded_summary(results):
    """Lines comparing multi-threaded candidates: engine vs torch on the same
    number of threads, and vs optax."""
    lines = []
    for w in results:
        rows = {row["candidate"]: row for row in w["rows"]}
        for name, row in rows.items():
            if not (name.startswith("engine compiled, ") and "threads" in name):
                continue
            n = name.split(", ")[1].split()[0]
            peer = rows.get(f"torch foreach, {n} threads")
            text = f"{w['name']}: {name} {row['ms']:.3f} ms"
            if peer:
                ratio = peer["ms"] / row["ms"]
                text += f"; torch on {n} threads {peer['ms']:.3f} ms ({ratio:.2f}x)"
            jit = rows.get("optax rmsprop (jax.jit, CPU)")
            if jit:
                text += f"; optax jit {jit['ms']:.3f} ms ({jit['ms'] / row['ms']:.2f}x)"
            lines.append(text)
    return lines


LEGEND = ("Median ms per step in steady state (blocks of consecutive steps, rotated across "
          "rounds); 'alone ms' = the same candidate run alone before the rounds, '!' when it "
          "differs from the run by more than 20%. 'x mem limit' = time / (np.copyto time x "
          "streams/2); 'torch1/this' = torch on one thread / this. 'peak MB' = peak transient "
          "memory of one warm step (tracemalloc; torch's and XLA's allocations are invisible "
          "to it). Targets (issue 13, one thread) are informational.")


def markdown(results, meta, r_result):
    out = ["# rmsprop benchmark", "",
           f"{meta['when']} - {meta['machine']} - Python {meta['python']}, NumPy {meta['numpy']}, "
           f"torch {meta['torch']}, optax {meta['optax']}, engine kernels {meta['kernels']}, "
           f"mode {'quick' if meta['quick'] else 'full'}, load average at the start "
           f"{meta['load_average'] and ', '.join(f'{x:.2f}' for x in meta['load_average'])}",
           "", LEGEND, ""]
    for w in results:
        out.append(f"- **{w['name']}**: {w['what']} ({w['param_mb']:.1f} MB of parameters, "
                   f"{w['streams']} streams, copy {w['copy_ms']:.3f} ms, {w['rounds']} rounds)")
    out += ["", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for cells in table_rows(results):
        out.append("| " + " | ".join(cells) + " |")
    summary = threaded_summary(results)
    if summary:
        out += ["", "Threads:", ""] + [f"- {line}" for line in summary]
    out += ["", "## R path (`optimizer_apply()` vs hand-written vectorized R)", ""]
    if r_result.get("table"):
        out += ["```", r_result["table"].rstrip(), "```"]
    else:
        out.append(r_result.get("message", "not run"))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# R
# ---------------------------------------------------------------------------
def run_r(quick):
    script = ROOT / "bench" / "r_bench.R"
    rscript = shutil.which("Rscript")
    if rscript is None:
        return dict(skipped=True, message="R: skipped (Rscript not found)")
    json_path = OUT / "r_results.json"
    if json_path.exists():
        json_path.unlink()
    env = dict(os.environ)
    env.setdefault("RETICULATE_PYTHON", str(ROOT / ".venv" / "bin" / "python"))
    command = [rscript, str(script), "--json", str(json_path)] + (["--quick"] if quick else [])
    print(f"\n$ Rscript bench/r_bench.R{' --quick' if quick else ''}", flush=True)
    try:
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=900)
    except subprocess.TimeoutExpired:
        return dict(skipped=True, message="R: timed out after 900 s")
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        sys.stdout.write(proc.stderr[-3000:])
        return dict(skipped=True, message=f"R: Rscript exited with status {proc.returncode}")
    result = dict(skipped=True, message="R: no results written")
    if json_path.exists():
        result = json.loads(json_path.read_text())
    return result


# ---------------------------------------------------------------------------
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (fewer rounds)")
    parser.add_argument("--only", help="comma-separated workloads to run, e.g. W1,W3")
    parser.add_argument("--no-r", action="store_true", help="skip the R benchmark")
    parser.add_argument("--no-torch", action="store_true", help="leave torch out")
    args = parser.parse_args(argv)

    workloads = WORKLOADS
    if args.only:
        wanted = {w.strip().upper() for w in args.only.split(",")}
        workloads = [w for w in WORKLOADS if w["name"] in wanted]

    have_torch = torch is not None and not args.no_torch
    if have_torch:
        torch_note = f"{torch.__version__} (foreach=True; 1 and {TORCH_DEFAULT_THREADS} threads)"
    elif torch is None:
        torch_note = "not importable"
    else:
        torch_note = "disabled (--no-torch)"
    have_optax = optax is not None
    optax_note = (f"{optax.__version__} (jax {jax.__version__})" if have_optax
                  else "not importable (skipped)")
    info = rmsprop.kernel_info() if hasattr(rmsprop, "kernel_info") else None
    meta = dict(when=time.strftime("%Y-%m-%d %H:%M:%S"), machine=f"{platform.machine()}, "
                f"{os.cpu_count()} CPUs", python=platform.python_version(),
                numpy=np.__version__, torch=torch_note, optax=optax_note, quick=args.quick,
                kernels=", ".join(engine_kernels()), kernel_info=info,
                engine_default_threads=engine_default_threads(),
                load_average=os.getloadavg() if hasattr(os, "getloadavg") else None)
    print(f"rmsprop benchmark ({'quick' if args.quick else 'full'}): Python {meta['python']}, "
          f"NumPy {meta['numpy']}, {meta['machine']}")
    print(f"engine kernels: {meta['kernels']} (default threads {meta['engine_default_threads']})")
    torch_failed = torch is None and TORCH_ERROR and "No module named" not in TORCH_ERROR
    print(f"torch: {torch_note}" + (f" [{TORCH_ERROR}]" if torch_failed else ""))
    print(f"optax: {optax_note}")
    if meta["load_average"]:
        # Other processes' load: on a shared machine every time is inflated
        # by it, and ratios move with it.
        print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in meta["load_average"]))

    results = []
    try:
        for workload in workloads:
            print(f"  {workload['name']}: {workload['what']} ...", end=" ", flush=True)
            t0 = time.perf_counter()
            results.append(run_workload(workload, args.quick, have_torch, have_optax))
            print(f"{time.perf_counter() - t0:.1f} s", flush=True)
            gc.collect()
    finally:
        if hasattr(rmsprop, "set_kernel"):
            rmsprop.set_kernel(None)
            rmsprop.set_num_threads(None)

    print()
    print(LEGEND)
    print()
    print_table(results)
    summary = threaded_summary(results)
    if summary:
        print("\nThreads:")
        for line in summary:
            print("  " + line)

    r_result = dict(skipped=True, message="R: skipped (--no-r)")
    if not args.no_r:
        r_result = run_r(args.quick)
        if r_result.get("skipped"):
            print(r_result.get("message"))

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(dict(meta=meta, workloads=results, r=r_result),
                                                 indent=2) + "\n")
    (OUT / "results.md").write_text(markdown(results, meta, r_result))
    print(f"\nwrote {OUT.relative_to(ROOT)}/results.json and results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
