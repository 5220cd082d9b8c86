#!/usr/bin/env bash
# Lint the project (run by `make lint`, and so before every `make test`):
#   flake8  Python style (settings in .flake8: flake8 cannot read pyproject.toml)
#   mypy    the engine's type hints (settings in pyproject.toml, [tool.mypy])
#   lintr   the R package's R/ (settings in .lintr)
# Every linter runs even if an earlier one fails; exits non-zero if any did.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
failed=()

echo "== lint: flake8"
"$PY" -m flake8 python tests bench scripts || failed+=(flake8)
echo "== lint: mypy"
"$PY" -m mypy || failed+=(mypy)
echo "== lint: lintr R/"
Rscript -e 'lints <- lintr::lint_dir("R"); print(lints); quit(status = length(lints) > 0)' \
  || failed+=(lintr)

if [ "${#failed[@]}" -gt 0 ]; then
  echo "== lint FAILED: ${failed[*]}"
  exit 1
fi
echo "== lint: clean"
