#!/usr/bin/env python
"""Benchmark suite for the rmsprop engine (`make bench`).

Runs in one process, side by side, and prints per workload:

  * this engine, on plain NumPy arrays and on `rmsprop.Variable`s;
  * the engine's update math alone on flat arrays (a floor for the engine
    rows: the formula's NumPy passes without any gathering or checks);
  * a straightforward NumPy RMSprop, one expression per formula line;
  * `torch.optim.RMSprop(foreach=True)` on one thread, when torch is installed;
  * the memory limit: the time `np.copyto` needs for a params-sized buffer
    (2 streams: one read, one write), scaled to the streams the update touches
    (5 for plain RMSprop: read p, g, v; write p, v -- 9 for centered with
    momentum: read p, g, v, a, m; write p, v, a, m).  limit = copy * streams / 2.

Each candidate is timed as the median of many single steps after warm-up, with
the candidates interleaved round by round (the machine is noisy, so compare the
ratios within one run).  Peak transient memory per step is measured with
tracemalloc on a warm candidate (torch allocates outside Python's allocator, so
tracemalloc cannot see it: reported as n/a).  Then bench/r_bench.R is run with
Rscript for the R path (`optimizer_apply()`), if R is available.

Results: printed, and written to out/bench/results.json and out/bench/results.md.
Targets are informational: a miss is reported, never an error exit.

    .venv/bin/python bench/run.py [--quick] [--only W1,W3] [--no-r]
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

OUT = ROOT / "out" / "bench"
LR, RHO, EPS = 0.001, 0.9, 1e-7
MB = 1e6

# name, description, shapes, dtype, centered, momentum, targets
# targets: mem = max ratio vs the memory limit; torch = min ratio torch/engine.
WORKLOADS = [
    dict(name="W1", what="1 tensor of 8,000,000, float32", shapes=[(8_000_000,)],
         dtype="float32", centered=False, momentum=0.0, targets=dict(mem=3.0, torch=1.5)),
    dict(name="W2", what="500 tensors of 1,000, float32", shapes=[(1_000,)] * 500,
         dtype="float32", centered=False, momentum=0.0, targets=dict(torch=5.0)),
    dict(name="W3", what="100 matrices of 100x100, float32", shapes=[(100, 100)] * 100,
         dtype="float32", centered=False, momentum=0.0, targets=dict(torch=2.0)),
    dict(name="W4", what="1 tensor of 8,000,000, float32, centered, momentum 0.9",
         shapes=[(8_000_000,)], dtype="float32", centered=True, momentum=0.9,
         targets=dict(mem=3.0, torch=1.5)),
    dict(name="W5", what="1 tensor of 8,000,000, float64 (W1 in float64; W1's targets)",
         shapes=[(8_000_000,)], dtype="float64", centered=False, momentum=0.0,
         targets=dict(mem=3.0, torch=1.5)),
]


def streams(workload):
    """Memory streams of one update: read p, g, v; write p, v; +2 per extra slot."""
    return 5 + 2 * (workload["centered"] + (workload["momentum"] > 0))


# ---------------------------------------------------------------------------
# Candidates: each returns a zero-argument `step` that performs one update.
# ---------------------------------------------------------------------------
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


def make_update_math(workload, total):
    """The engine's formula alone, on one flat array per stream with nothing to
    gather, check or store: what an engine step costs at least, whatever its
    bookkeeping (a floor to read the engine's rows against; no targets)."""
    dtype = np.dtype(workload["dtype"])
    rng = np.random.default_rng(2)
    param = rng.standard_normal(total).astype(dtype)
    grad = (rng.standard_normal(total) * 0.01).astype(dtype)
    velocity = np.zeros(total, dtype)
    average = np.zeros(total, dtype) if workload["centered"] else None
    momentum = np.zeros(total, dtype) if workload["momentum"] > 0 else None
    scalars = [np.asarray(dtype.type(x))
               for x in (LR, RHO, 1 - RHO, EPS, workload["momentum"])]
    scratch = kernels.Scratch().get(dtype)

    def step():
        kernels.rmsprop_update(kernels.chunk_pieces(param, grad, 0, total), velocity, average,
                               momentum, *scalars, scratch)
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


def make_copy(workload, total):
    source = np.random.default_rng(1).standard_normal(total).astype(workload["dtype"])
    target = np.empty_like(source)

    def step():
        np.copyto(target, source)
    return step


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------
def time_interleaved(steps, min_rounds, max_rounds, budget_s, warmup=3):
    """Median seconds per call of each step, calling them in turn round by round."""
    names = list(steps)
    for name in names:
        for _ in range(warmup):
            steps[name]()
    samples = {name: [] for name in names}
    clock = time.perf_counter
    started = clock()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        rounds = 0
        while rounds < max_rounds and (rounds < min_rounds or clock() - started < budget_s):
            # Rotate the order so that no candidate always follows the same one.
            shift = rounds % len(names)
            for name in names[shift:] + names[:shift]:
                step = steps[name]
                t0 = clock()
                step()
                samples[name].append(clock() - t0)
            rounds += 1
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: float(np.median(s)) for name, s in samples.items()}, rounds


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


def run_workload(workload, quick, have_torch):
    rng = np.random.default_rng(0)
    dtype = workload["dtype"]
    init = [rng.standard_normal(s).astype(dtype) for s in workload["shapes"]]
    grads = [(rng.standard_normal(s) * 0.01).astype(dtype) for s in workload["shapes"]]
    total = sum(p.size for p in init)
    param_bytes = total * np.dtype(dtype).itemsize

    steps = {
        "engine (arrays)": make_engine(workload, [p.copy() for p in init], grads, False),
        "engine (Variable)": make_engine(workload, [p.copy() for p in init], grads, True),
        "update math alone (flat)": make_update_math(workload, total),
        "numpy (one expr/line)": make_numpy(workload, [p.copy() for p in init], grads),
    }
    if have_torch:
        steps["torch foreach, 1 thread"] = make_torch(workload, [p.copy() for p in init], grads)
    steps["memcopy (np.copyto)"] = make_copy(workload, total)

    big = param_bytes > 8 * MB
    if quick:
        min_rounds, max_rounds, budget = 7, 60, 0.8 if big else 0.4
    else:
        min_rounds, max_rounds, budget = 25, 400, 5.0 if big else 2.0
    times, rounds = time_interleaved(steps, min_rounds, max_rounds, budget)

    copy_s = times.pop("memcopy (np.copyto)")
    limit_s = copy_s * streams(workload) / 2
    peaks = {name: (None if name.startswith("torch") else peak_transient(step))
             for name, step in steps.items() if not name.startswith("memcopy")}
    del steps
    gc.collect()

    torch_s = times.get("torch foreach, 1 thread")
    temp_limit = max(1 * MB, 0.05 * param_bytes)
    targets = workload["targets"]
    rows = []
    for name, seconds in times.items():
        row = dict(candidate=name, ms=seconds * 1e3, vs_memory_limit=seconds / limit_s,
                   torch_over_this=(torch_s / seconds) if torch_s else None,
                   peak_transient_mb=None if peaks.get(name) is None else peaks[name] / MB,
                   checks=[])
        if name.startswith("engine"):
            if "mem" in targets:
                row["checks"].append(dict(
                    target=f"<= {targets['mem']:g}x mem limit",
                    value=row["vs_memory_limit"], ok=row["vs_memory_limit"] <= targets["mem"]))
            if "torch" in targets:
                ratio = row["torch_over_this"]
                row["checks"].append(dict(
                    target=f">= {targets['torch']:g}x faster than torch", value=ratio,
                    ok=None if ratio is None else ratio >= targets["torch"]))
            row["checks"].append(dict(
                target=f"temp <= {temp_limit / MB:.2f} MB", value=row["peak_transient_mb"],
                ok=peaks[name] <= temp_limit))
        rows.append(row)
    rows.append(dict(candidate=f"memory limit (copy x {streams(workload)}/2)", ms=limit_s * 1e3,
                     vs_memory_limit=1.0, torch_over_this=(torch_s / limit_s) if torch_s else None,
                     peak_transient_mb=None, checks=[]))
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


HEADER = ["workload", "candidate", "ms/step", "x mem limit", "torch/this", "peak MB", "targets"]


def table_rows(results):
    lines = []
    for w in results:
        for row in w["rows"]:
            lines.append([w["name"], row["candidate"], fmt(row["ms"], ".3f"),
                          fmt(row["vs_memory_limit"], ".2f"), fmt(row["torch_over_this"], ".2f"),
                          fmt(row["peak_transient_mb"], ".3f"),
                          "; ".join(check_text(c) for c in row["checks"])])
    return lines


def print_table(results):
    lines = table_rows(results)
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(HEADER)]
    right = {2, 3, 4, 5}

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


def markdown(results, meta, r_result):
    out = ["# rmsprop benchmark", "",
           f"{meta['when']} - {meta['machine']} - Python {meta['python']}, NumPy {meta['numpy']}, "
           f"torch {meta['torch']}, mode {'quick' if meta['quick'] else 'full'}, "
           f"kernels.CHUNK={meta['chunk']}", "",
           "Median ms per step (candidates interleaved). Memory limit = np.copyto time for a "
           "params-sized buffer x streams / 2. Peak MB = peak transient memory of one warm step "
           "(tracemalloc; torch's allocator is invisible to it).", ""]
    for w in results:
        out.append(f"- **{w['name']}**: {w['what']} ({w['param_mb']:.1f} MB of parameters, "
                   f"{w['streams']} streams, copy {w['copy_ms']:.3f} ms, {w['rounds']} rounds)")
    out += ["", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for cells in table_rows(results):
        out.append("| " + " | ".join(cells) + " |")
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
        torch.set_num_threads(1)
        torch_note = f"{torch.__version__} (1 thread, foreach=True)"
    elif torch is None:
        torch_note = "not installed"
    else:
        torch_note = "disabled (--no-torch)"
    meta = dict(when=time.strftime("%Y-%m-%d %H:%M:%S"), machine=f"{platform.machine()}, "
                f"{os.cpu_count()} CPUs", python=platform.python_version(),
                numpy=np.__version__, torch=torch_note, quick=args.quick, chunk=kernels.CHUNK,
                openblas={k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")})
    print(f"rmsprop benchmark ({'quick' if args.quick else 'full'}): Python {meta['python']}, "
          f"NumPy {meta['numpy']}, {meta['machine']}, kernels.CHUNK={kernels.CHUNK}")
    torch_failed = torch is None and TORCH_ERROR and "No module named" not in TORCH_ERROR
    print(f"torch: {torch_note}" + (f" [{TORCH_ERROR}]" if torch_failed else ""))

    results = []
    for workload in workloads:
        print(f"  {workload['name']}: {workload['what']} ...", end=" ", flush=True)
        t0 = time.perf_counter()
        results.append(run_workload(workload, args.quick, have_torch))
        print(f"{results[-1]['rounds']} rounds, {time.perf_counter() - t0:.1f} s", flush=True)
        gc.collect()

    print()
    print("Median ms/step; 'x mem limit' = time / (np.copyto time x streams/2); "
          "'torch/this' = torch time / this time;")
    print("'peak MB' = peak transient memory of one warm step (tracemalloc). "
          "Targets are informational.\n")
    print_table(results)

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
