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

python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "test.sh: Python 3.11 or newer is needed ($python is $("$python" -V 2>&1))" >&2; exit 2; }
docker compose version >/dev/null 2>&1 \
  || { echo "test.sh: Docker with the Compose v2 plugin is needed" >&2; exit 2; }

venv=.venv-test
if [ ! -x "$venv/bin/python" ]; then
  echo "== creating $venv"
  "$python" -m venv "$venv"
fi
echo "== installing the pinned test dependencies"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
PATH="$PWD/$venv/bin:$PATH" bash protos/generate.sh build/generated

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
