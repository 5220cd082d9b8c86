#!/usr/bin/env bash
# Set up everything this checkout needs, idempotently (run by `make setup`,
# and by `make test` before every test run, so it must stay fast when there is
# nothing to do).  Prints one line per step: what was done, or why skipped.
#
#   (a) Debian packages (apt-get; only when some are missing)
#   (b) R package reticulate >= 1.31 from R's configured CRAN repos
#       (Debian's r-cran-reticulate 1.28 crashes under rpy2)
#   (c) per-checkout Python venv at .venv (system interpreter, with system
#       site-packages for Debian's numpy/pytest/rpy2) + editable install of
#       the rmsprop engine from python/
#   (c2) record .venv/bin/python for the R package, in the file "python" of
#       tools::R_user_dir("rmsprop", "config") (read on first use by the package)
#   (d) the R package in this checkout (once DESCRIPTION exists), reinstalled
#       whenever R/, DESCRIPTION, NAMESPACE, man/, inst/, src/ or the engine
#       it bundles (python/rmsprop, linked as inst/python/rmsprop) change
#
# Never uses the `python3` first on PATH (a pyenv interpreter that can't see
# Debian's packages): the venv is built from /usr/bin/python3.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

SYS_PYTHON=/usr/bin/python3   # Debian's; the venv check below expects base_prefix /usr
VENV="$ROOT/.venv"
VPY="$VENV/bin/python"
RETICULATE_MIN="1.31"

export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_NO_INPUT=1

say()  { printf 'setup: %-11s %s\n' "$1" "$2"; }
die()  { printf 'setup: %-11s FAILED: %s\n' "$1" "$2" >&2; exit 1; }

T0=$SECONDS

# ---------------------------------------------------------------------------
# (a) Debian packages
# ---------------------------------------------------------------------------
step_apt() {
  if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
    say apt "skipped: apt-get/dpkg-query not found (not Debian?); assuming the packages are present"
    return
  fi
  local pkgs=(
    python3-numpy python3-pytest python3-rpy2 python3-venv python3-hypothesis
    python3-setuptools python3-wheel python3-pip python3-flake8 python3-mypy
    r-cran-rcpp r-cran-rcpptoml r-cran-here r-cran-png r-cran-rappdirs
    r-cran-jsonlite r-cran-rlang r-cran-withr r-cran-roxygen2 r-cran-testthat
    r-cran-mass r-cran-lintr
    r-cran-knitr r-cran-rmarkdown pandoc r-cran-pkgdown qpdf
  )
  # R itself and what R needs to compile packages (reticulate has C++ code).
  # Only ask for Debian's R when R is missing or is Debian's anyway.
  if ! command -v R >/dev/null 2>&1; then
    pkgs+=(r-base-core r-base-dev)
  elif dpkg-query -W -f='${Status}' r-base-core 2>/dev/null | grep -q 'install ok installed'; then
    pkgs+=(r-base-dev)
  fi

  local missing=() p
  for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    say apt "skipped: all ${#pkgs[@]} Debian packages already installed"
    return
  fi

  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die apt "not root and no sudo; please install: ${missing[*]}"
    sudo=(sudo -n)
  fi
  say apt "installing ${#missing[@]} missing: ${missing[*]}"
  # Wait (up to 10 min) for a concurrently running apt/dpkg instead of failing.
  local lock=(-o DPkg::Lock::Timeout=600)
  "${sudo[@]}" apt-get "${lock[@]}" update -q >/dev/null \
    || die apt "apt-get update failed"
  "${sudo[@]}" apt-get "${lock[@]}" install -y -q --no-install-recommends "${missing[@]}" \
    || die apt "apt-get install failed"
  say apt "done: installed ${missing[*]}"
}

# ---------------------------------------------------------------------------
# (b) reticulate >= 1.31 from CRAN
# ---------------------------------------------------------------------------
reticulate_check() {
  # prints the reticulate version R would load (or "none");
  # exit status 0 iff it is >= RETICULATE_MIN
  Rscript -e "v <- tryCatch(utils::packageVersion('reticulate'), error = function(e) NULL)
    cat(if (is.null(v)) 'none' else as.character(v))
    quit(status = if (!is.null(v) && v >= '$RETICULATE_MIN') 0L else 3L)" 2>/dev/null
}

step_reticulate() {
  command -v Rscript >/dev/null 2>&1 || die reticulate "Rscript not found (R is not installed)"
  local v
  if v="$(reticulate_check)"; then
    say reticulate "skipped: reticulate $v already installed (>= $RETICULATE_MIN)"
    return
  fi
  say reticulate "installing from R's configured CRAN repos (found: ${v:-none}, need >= $RETICULATE_MIN)"
  Rscript -e '
    repos <- getOption("repos")
    if (is.null(repos) || !length(repos) || any(repos == "@CRAN@"))
      stop("no CRAN mirror configured in R (options(\"repos\")); configure one in Rprofile.site")
    install.packages("reticulate", Ncpus = 2)
  ' || die reticulate "install.packages(\"reticulate\") failed"
  v="$(reticulate_check)" || die reticulate "reticulate >= $RETICULATE_MIN still not installed after install.packages (found: ${v:-none})"
  Rscript -e 'suppressPackageStartupMessages(library(reticulate))' \
    || die reticulate "reticulate $v installed but does not load"
  say reticulate "done: reticulate $v installed"
}

# ---------------------------------------------------------------------------
# (c) per-checkout venv + editable install of the Python engine
# ---------------------------------------------------------------------------
venv_ok() {
  [ -x "$VPY" ] || return 1
  # Must be the system interpreter (sees Debian's numpy/pytest) and work.
  "$VPY" - <<'PY' >/dev/null 2>&1
import sys
assert sys.prefix != sys.base_prefix          # really a venv
assert sys.base_prefix == "/usr", sys.base_prefix  # built from Debian's python3
import numpy, pytest                           # system site-packages visible
PY
}

step_venv() {
  if venv_ok; then
    say venv "skipped: .venv exists and sees Debian's numpy/pytest"
    return
  fi
  [ -x "$SYS_PYTHON" ] || die venv "$SYS_PYTHON not found"
  if [ -e "$VENV" ]; then
    say venv "recreating: .venv is missing/broken or not built from $SYS_PYTHON"
    rm -rf "$VENV"
  fi
  "$SYS_PYTHON" -m venv --system-site-packages "$VENV" || die venv "python3 -m venv failed"
  venv_ok || die venv ".venv was made but cannot import numpy/pytest (are python3-numpy/python3-pytest installed?)"
  say venv "done: created .venv from $SYS_PYTHON with system site-packages"
}

engine_ok() {
  # rmsprop importable from .venv, editable, from THIS checkout's python/,
  # installed after the last change to pyproject.toml, setup.py or the
  # compiled kernel's C source (an editable install builds it into python/).
  [ -f "$VENV/.py-installed" ] || return 1
  local f
  for f in "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT"/python/rmsprop/*.c; do
    if [ -e "$f" ] && [ "$f" -nt "$VENV/.py-installed" ]; then return 1; fi
  done
  "$VPY" - "$ROOT/python" <<'PY' >/dev/null 2>&1
import importlib.metadata, importlib.util, os, sys
want = os.path.realpath(sys.argv[1])
spec = importlib.util.find_spec("rmsprop")
assert spec is not None and spec.origin
got = os.path.dirname(os.path.dirname(os.path.realpath(spec.origin)))
assert got == want, (got, want)
importlib.metadata.version("rmsprop")
PY
}

kernel_ok() {
  # The compiled kernel (python/rmsprop/_fused*.so, built by the editable
  # install) is there whenever it can be built: when there is a C compiler;
  # and built from the current _fused.c (a checkout that pulled a new one
  # rebuilds it).
  [ ! -f "$ROOT/setup.py" ] || ! command -v cc >/dev/null 2>&1 && return 0
  local so
  for so in "$ROOT"/python/rmsprop/_fused*.so; do
    [ -f "$so" ] && [ ! "$ROOT/python/rmsprop/_fused.c" -nt "$so" ] && return 0
  done
  return 1
}

step_engine() {
  if [ ! -f "$ROOT/python/rmsprop/__init__.py" ]; then
    say engine "skipped: python/rmsprop/__init__.py does not exist yet"
    return
  fi
  if engine_ok && kernel_ok; then
    say engine "skipped: rmsprop already installed editable from $ROOT/python"
    return
  fi
  say engine "installing rmsprop editable from $ROOT/python into .venv (and building its compiled kernel)"
  "$VENV/bin/pip" install -q --no-index --no-build-isolation --no-deps -e "$ROOT" \
    || die engine "pip install -e . failed"
  touch "$VENV/.py-installed"
  engine_ok || die engine "rmsprop not importable from this checkout after install"
  local kernel
  kernel="$("$VPY" -c 'import rmsprop; print(rmsprop.kernel_info()["kernel"])')"
  say engine "done: rmsprop $("$VPY" -c 'import importlib.metadata as m; print(m.version("rmsprop"))') installed editable; update kernel: $kernel"
  kernel_ok || say engine "note: a C compiler is here but the compiled kernel was not built (see pip's output); the NumPy kernel runs"
}

# ---------------------------------------------------------------------------
# (c2) record this checkout's Python for the R package (read lazily on first
#      use by library(rmsprop), so it works without RETICULATE_PYTHON)
# ---------------------------------------------------------------------------
step_record_python() {
  command -v Rscript >/dev/null 2>&1 || { say rpython "skipped: Rscript not found"; return; }
  local file
  file="$(Rscript -e 'cat(file.path(tools::R_user_dir("rmsprop", "config"), "python"))' 2>/dev/null)" \
    || die rpython "could not ask R for tools::R_user_dir()"
  if [ -f "$file" ] && [ "$(head -n1 "$file")" = "$VPY" ]; then
    say rpython "skipped: $file already names $VPY"
    return
  fi
  mkdir -p "$(dirname "$file")" || die rpython "cannot create $(dirname "$file")"
  printf '%s\n' "$VPY" > "$file.tmp.$$" && mv -f "$file.tmp.$$" "$file" \
    || die rpython "cannot write $file"
  say rpython "done: recorded $VPY in $file"
}

# ---------------------------------------------------------------------------
# (d) the R package of this checkout
# ---------------------------------------------------------------------------
rpkg_fingerprint() {
  # identifies one particular install of the package (Meta/package.rds holds
  # the build time), so an install from another checkout is noticed
  md5sum < "$1/Meta/package.rds" 2>/dev/null | cut -d' ' -f1
}

step_rpkg() {
  if [ ! -f "$ROOT/DESCRIPTION" ]; then
    say rpkg "skipped: no DESCRIPTION at the repo root yet"
    return
  fi
  local pkg instdir stamp="$VENV/.r-installed" why=""
  pkg="$(sed -n 's/^Package:[[:space:]]*//p' "$ROOT/DESCRIPTION" | head -n1 | tr -d '[:space:]')"
  [ -n "$pkg" ] || die rpkg "DESCRIPTION has no Package: field"

  # The R package goes to R's default library, shared by every checkout on the
  # machine; the stamp in this checkout's .venv records which install is ours.
  instdir="$(Rscript -e "cat(system.file(package = '$pkg'))" 2>/dev/null || true)"
  if [ -z "$instdir" ]; then
    why="R package $pkg is not installed"
  elif [ ! -f "$stamp" ]; then
    why="not yet installed from this checkout"
  elif [ "$(cat "$stamp")" != "$(rpkg_fingerprint "$instdir")" ]; then
    why="the installed copy was installed from elsewhere since"
  else
    local d newer
    for d in R DESCRIPTION NAMESPACE man inst src data python/rmsprop; do
      [ -e "$ROOT/$d" ] || continue
      newer="$(find "$ROOT/$d" -name __pycache__ -prune -o -newer "$stamp" -print -quit)"
      if [ -n "$newer" ]; then why="${newer#"$ROOT"/} changed since last install"; break; fi
    done
  fi
  if [ -z "$why" ]; then
    say rpkg "skipped: R package $pkg installed from this checkout and up to date"
    return
  fi
  say rpkg "installing R package $pkg ($why)"
  local t=$SECONDS ref="$VENV/.r-install-start" log="$VENV/.r-install.log"
  # The stamp gets the time the install STARTED, so edits made during the
  # install still count as newer next time.
  touch "$ref"
  if ! R CMD INSTALL --no-multiarch "$ROOT" >"$log" 2>&1; then
    rm -f "$ref" "$stamp"
    cat "$log" >&2
    die rpkg "R CMD INSTALL failed (log above)"
  fi
  instdir="$(Rscript -e "cat(system.file(package = '$pkg'))")"
  rpkg_fingerprint "$instdir" > "$stamp"
  touch -r "$ref" "$stamp"
  rm -f "$ref"
  say rpkg "done: installed $pkg in $((SECONDS - t))s"
}

step_apt
step_reticulate
step_venv
step_engine
step_record_python
step_rpkg
touch "$VENV/.setup-done"
say all "done in $((SECONDS - T0))s"
