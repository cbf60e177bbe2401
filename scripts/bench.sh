#!/usr/bin/env bash
# The benchmark: bash scripts/bench.sh [--size quick|full|tiny] [--project NAME] [--only SECTION]
# Starts a stack of its own unless --project names a running one; writes results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh
# The fan-out section's listeners are a Node program (bench/fanout, the ws package pinned by its lock file).
if [ ! -d bench/fanout/node_modules ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "== installing bench/fanout's Node packages (npm ci)"
    npm ci --prefix bench/fanout --no-audit --no-fund
  else
    echo "bench.sh: npm not found; --only fan-out needs Node.js and npm (Debian: apt-get install nodejs npm)" >&2
  fi
fi
# The Node load generators of --only protocols (bench/load, pinned by its lock file).
if [ ! -d bench/load/node_modules ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "== installing bench/load's Node packages (npm ci)"
    npm ci --prefix bench/load --no-audit --no-fund
  else
    echo "bench.sh: npm not found; --only protocols and latency need Node.js and npm (Debian: apt-get install nodejs npm)" >&2
  fi
fi
PYTHONPATH="$PWD:$PWD/build/generated" exec .venv-test/bin/python -m bench "$@"
