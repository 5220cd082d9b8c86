#!/usr/bin/env bash
# The R source tarball is self-contained: build it, install it into an empty
# temporary library, and use it from a fresh Rscript, in a directory without
# a .venv, with no recorded Python, pointed (RMSPROP_PYTHON) at a Python that
# has NumPy but not the engine (Debian's /usr/bin/python3): the engine must
# come from the tarball. Also checks what the tarball leaves out, and that the
# installed package lists its vignettes and demo and cites without a warning.
#
#   bash scripts/test-tarball.sh [tarball]   (builds one into out/tarball if not given)
# Prints "tarball: ok" and exits 0, or says what failed and exits 1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
SYS_PYTHON="${RMSPROP_TEST_SYSTEM_PYTHON:-/usr/bin/python3}"
fail() { echo "tarball: FAILED: $*" >&2; exit 1; }

tarball="${1:-}"
if [ -z "$tarball" ]; then
  out="$ROOT/out/tarball"
  rm -rf "$out" && mkdir -p "$out"
  ( cd "$out" && R CMD build "$ROOT" >build.log 2>&1 ) || { cat "$out/build.log" >&2; fail "R CMD build"; }
  tarball="$(ls "$out"/rmsprop_*.tar.gz)"
fi
tarball="$(cd "$(dirname "$tarball")" && pwd -P)/$(basename "$tarball")"

# -- what travels, what stays out ----------------------------------------------
listing="$(tar tzf "$tarball")"
grep -qx 'rmsprop/inst/python/rmsprop/__init__.py' <<<"$listing" || fail "the engine is not in the tarball"
for left_out in 'rmsprop/tests/parity/' 'rmsprop/tests/python/' 'rmsprop/tests/data/' \
                'rmsprop/python/' 'rmsprop/pyproject.toml'; do
  if grep -q "^$left_out" <<<"$listing"; then fail "$left_out is in the tarball"; fi
done
if grep -Eq '__pycache__|\.(so|pyc)$' <<<"$listing"; then fail "compiled or cached files in the tarball"; fi

# -- install into an empty library and use it from a fresh R -------------------
[ -x "$SYS_PYTHON" ] || fail "$SYS_PYTHON not found"
"$SYS_PYTHON" -c 'import numpy' 2>/dev/null || fail "$SYS_PYTHON has no NumPy"
if "$SYS_PYTHON" -c 'import rmsprop' 2>/dev/null; then
  fail "$SYS_PYTHON can import rmsprop itself, so it cannot show that the tarball brings the engine"
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lib" "$tmp/work" "$tmp/config"
R CMD INSTALL --no-multiarch -l "$tmp/lib" "$tarball" >"$tmp/install.log" 2>&1 \
  || { cat "$tmp/install.log" >&2; fail "R CMD INSTALL of the tarball"; }

cd "$tmp/work"
env -u RETICULATE_PYTHON -u VIRTUAL_ENV \
  R_LIBS="$tmp/lib" R_USER_CONFIG_DIR="$tmp/config" RMSPROP_PYTHON="$SYS_PYTHON" \
  Rscript -e '
    lib <- normalizePath(Sys.getenv("R_LIBS"))
    library(rmsprop)
    stopifnot(startsWith(normalizePath(find.package("rmsprop")), lib))
    opt <- optimizer_rmsprop(learning_rate = 0.1)
    p <- optimizer_apply(opt, list(w = c(1, -2)), list(w = c(0.5, 0.5)))
    # one RMSprop step from zero state moves each value by lr / sqrt(1 - rho)
    stopifnot(isTRUE(all.equal(p$w, c(0.5, 0.5) - c(1, -1) * 0.1 / sqrt(0.1), tolerance = 1e-6)))
    config <- rmsprop_python_config()
    stopifnot(identical(config$python, Sys.getenv("RMSPROP_PYTHON")))
    stopifnot(startsWith(normalizePath(config$engine_path), lib))
    stopifnot(identical(config$engine, as.character(packageVersion("rmsprop"))))
    # what an R user finds in the installed package
    stopifnot(setequal(vignette(package = "rmsprop")$results[, "Item"],
                       c("getting-started", "precision-and-parity", "from-python")))
    stopifnot("biopsy" %in% demo(package = "rmsprop")$results[, "Item"])
    invisible(withCallingHandlers(format(citation("rmsprop")),
                                  warning = function(w) stop("citation() warns: ", conditionMessage(w))))
    stopifnot(file.exists(system.file("NEWS.md", package = "rmsprop")))
    cat("engine", config$engine, "from", config$engine_path, "on", config$python, "\n")
  ' || fail "the installed tarball does not work with $SYS_PYTHON"
echo "tarball: ok"
