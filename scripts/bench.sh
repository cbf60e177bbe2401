#!/usr/bin/env bash
# The benchmark: bash scripts/bench.sh [--size quick|full|tiny] [--project NAME]
# Starts a stack of its own unless --project names a running one; writes results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh
PYTHONPATH="$PWD:$PWD/build/generated" exec .venv-test/bin/python -m bench "$@"
