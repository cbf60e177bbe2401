#!/usr/bin/env bash
# The benchmark: bash scripts/bench.sh [--size quick|full|tiny] [--project NAME] [--only SECTION]
# Starts a stack of its own unless --project names a running one; writes results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh
# The Node load generators (--only protocols), at the versions of bench/load/package-lock.json.
if [ ! -d bench/load/node_modules ]; then
  npm ci --prefix bench/load --no-audit --no-fund
fi
PYTHONPATH="$PWD:$PWD/build/generated" exec .venv-test/bin/python -m bench "$@"
