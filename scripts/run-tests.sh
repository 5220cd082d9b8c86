#!/usr/bin/env bash
# Run every test suite of this checkout (called by `make test`, after setup):
#   - Python engine: .venv/bin/python -m pytest tests/python, once per update
#     kernel (RMSPROP_KERNEL=numpy, and =compiled when it is built)
#   - R package:     tests/testthat against the installed package
#   - R <-> Python parity (rpy2), tests/parity
#   - the R source tarball: self-contained (scripts/test-tarball.sh)
# Every suite runs even if an earlier one fails; exits non-zero if any failed.
# Ends with one plain line "all: N passed, N failed, N skipped".
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
export RETICULATE_PYTHON="${RETICULATE_PYTHON:-$ROOT/.venv/bin/python}"
OUT="$ROOT/out/test"
mkdir -p "$OUT"

# "passed failed skipped" from a pytest JUnit XML report.
junit_counts() {
  "$PY" - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = sum(int(x.get("tests", 0)) for x in suites)
f = sum(int(x.get("failures", 0)) + int(x.get("errors", 0)) for x in suites)
s = sum(int(x.get("skipped", 0)) for x in suites)
print(t - f - s, f, s)
PY
}

failed_suites=()
passed=0 failed=0 skipped=0

# ---- Python ---------------------------------------------------------------
# Once per update kernel: the NumPy reference, then the compiled one when it
# was built (rmsprop.kernel_info()); RMSPROP_KERNEL forces each.
kernels="numpy"
if "$PY" -c 'import sys, rmsprop; sys.exit("compiled" not in rmsprop.kernel_info()["available"])' \
    2>/dev/null; then
  kernels="numpy compiled"
else
  echo "== python: the compiled kernel is not built here; the suite runs on the NumPy kernel only"
fi
if [ -d tests/python ]; then
  for kernel in $kernels; do
    echo "== python: pytest tests/python (RMSPROP_KERNEL=$kernel)"
    xml="$OUT/pytest-$kernel.xml"
    rm -f "$xml"
    RMSPROP_KERNEL=$kernel "$PY" -m pytest tests/python -q --junitxml="$xml"
    rc=$?
    if [ "$rc" -eq 5 ]; then
      echo "== python: no tests collected (pytest exit 5) — not counted as a failure"
    elif [ "$rc" -ne 0 ]; then
      failed_suites+=("python-$kernel(exit $rc)")
    fi
    if [ -f "$xml" ]; then
      read -r p f s < <(junit_counts "$xml") || { p=0 f=1 s=0; }
      passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
    elif [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then
      failed=$((failed + 1))
    fi
  done
else
  echo "== python: skipped (no tests/python directory)"
fi

# ---- R --------------------------------------------------------------------
if [ ! -d R ] || [ ! -f DESCRIPTION ]; then
  echo "== R: skipped (no R/ directory or DESCRIPTION yet)"
elif [ ! -d tests/testthat ]; then
  echo "== R: skipped (no tests/testthat directory)"
else
  echo "== R: testthat tests/testthat (installed package)"
  rm -f "$OUT/testthat.counts"
  R_TEST_COUNTS="$OUT/testthat.counts" Rscript "$ROOT/scripts/run-r-tests.R" "$ROOT"
  rc=$?
  [ "$rc" -ne 0 ] && failed_suites+=("R(exit $rc)")
  if [ -f "$OUT/testthat.counts" ]; then
    read -r p f s < "$OUT/testthat.counts"
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
  elif [ "$rc" -ne 0 ]; then
    failed=$((failed + 1))
  fi
fi

# ---- R <-> Python parity (R embedded through rpy2) --------------------------
if [ -d tests/parity ] && [ -f DESCRIPTION ]; then
  echo "== parity: pytest tests/parity (R embedded through rpy2)"
  rm -f "$OUT/parity.xml"
  # The suite's conftest ends the process itself (rpy2 can hang at exit);
  # timeout is a last guard so a hang fails loudly instead of stalling CI.
  timeout 1800 "$PY" -m pytest tests/parity -q -p no:cacheprovider --junitxml="$OUT/parity.xml"
  rc=$?
  [ "$rc" -ne 0 ] && failed_suites+=("parity(exit $rc)")
  if [ -f "$OUT/parity.xml" ]; then
    read -r p f s < <(junit_counts "$OUT/parity.xml") || { p=0 f=1 s=0; }
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
  elif [ "$rc" -ne 0 ]; then
    failed=$((failed + 1))
  fi
fi

# ---- the R source tarball, installed elsewhere ----------------------------------
if [ -f DESCRIPTION ]; then
  echo "== tarball: build, install into an empty library, use with /usr/bin/python3"
  if bash "$ROOT/scripts/test-tarball.sh"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); failed_suites+=("tarball")
  fi
fi

if [ "${#failed_suites[@]}" -gt 0 ]; then
  echo "== FAILED suites: ${failed_suites[*]}"
fi
echo "all: $passed passed, $failed failed, $skipped skipped"
[ "${#failed_suites[@]}" -eq 0 ]
