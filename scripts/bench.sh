#!/usr/bin/env bash
# The benchmark: bash scripts/bench.sh [--size quick|full|tiny] [--project NAME] [--only SECTION]
# Starts a stack of its own unless --project names a running one; writes results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh
# prepare.sh also installs the Node packages of bench/load and bench/fanout (npm ci).
PYTHONPATH="$PWD:$PWD/build/generated" exec .venv-test/bin/python -m bench "$@"
