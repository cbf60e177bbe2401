#!/usr/bin/env bash
# Runs every test of the suite on a machine with Docker (Compose v2) and Python 3.11+:
#   1. a virtual environment (.venv-test) with the pinned test dependencies,
#   2. the gRPC code generated from protos/ into build/generated,
#   3. the unit tests,
#   4. the end-to-end tests against the whole stack, built and started under a
#      compose project of their own with no fixed host ports, torn down
#      (down -v) at the end even when a test fails.
# Extra arguments go to the end-to-end pytest run (e.g. -k rest, -x).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/prepare.sh
venv=.venv-test

echo "== unit tests"
"$venv/bin/python" -m pytest tests/unit -q

project="msgsuite-test-$(date +%s)-$$"
export E2E_PROJECT="$project"
teardown() {
  echo "== tearing down compose project $project"
  docker compose -p "$project" down -v --remove-orphans >/dev/null 2>&1 || true
}
trap teardown EXIT
echo "== end-to-end tests (compose project $project)"
"$venv/bin/python" -m pytest tests/e2e "$@"
