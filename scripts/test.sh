#!/usr/bin/env bash
# Runs every test of the suite on a machine with Docker (Compose v2) and Python 3.11+:
#   1. a virtual environment (.venv-test) with the pinned test dependencies,
#   2. the gRPC code generated from protos/ into build/generated,
#   3. style: ruff check and ruff format --check (configured in pyproject.toml),
#   4. the dependency audit: pip-audit on every pinned requirements file, known
#      vulnerabilities with a fix fail unless allowed (security/audit-allowlist.toml),
#   5. the unit tests,
#   6. the end-to-end tests against the whole stack, built and started under a
#      compose project of their own with no fixed host ports, torn down
#      (down -v) at the end even when a test fails; then the Docker Swarm test.
# Any finding or failing test fails the command. Extra arguments go to the
# end-to-end pytest run only (e.g. -k rest, -x, --randomly-seed=N,
# -p no:randomly); the style checks and the unit tests always run whole.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/prepare.sh
venv=.venv-test

echo "== style (ruff)"
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .

echo "== types (mypy --strict)"
"$venv/bin/mypy"

echo "== dependency audit (pip-audit; allowlist security/audit-allowlist.toml)"
"$venv/bin/python" -m security.dependency_audit

echo "== unit tests"
"$venv/bin/python" -m pytest tests/unit  # not -q: the header shows the random order's seed

project="msgsuite-test-$(date +%s)-$$"
export E2E_PROJECT="$project"
export E2E_SWARM_STACK="sw-$(date +%s)-$$"  # short: Swarm secret names are <stack>_<name>, 64 at most
teardown() {
  # The shared stack and any stack of a test's own ($project-own-…) that a killed run left behind.
  for name in $(docker compose ls --all --quiet | grep -E "^$project(-own-.*)?$" || true) "$project"; do
    echo "== tearing down compose project $name"
    docker compose -p "$name" down -v --remove-orphans >/dev/null 2>&1 || true
  done
  # The swarm test's stack, if a killed run left it (and swarm mode, if the test initialised it).
  if [ -f "build/swarm/$E2E_SWARM_STACK.deployed" ] || [ -f build/swarm/swarm-initialised ]; then
    echo "== tearing down swarm stack $E2E_SWARM_STACK"
    bash scripts/swarm.sh down --stack "$E2E_SWARM_STACK" >/dev/null 2>&1 || true
  fi
}
trap teardown EXIT
echo "== end-to-end tests (compose project $project)"
"$venv/bin/python" -m pytest tests/e2e --ignore=tests/e2e/test_swarm.py "$@" || [ $? -eq 5 ]
teardown
# Swarm last, once every compose stack is gone: leaving swarm mode breaks name
# resolution on the compose networks that existed meanwhile (seen on engine 20.10).
# Exit 5 (either run) is "no test selected", as when the arguments (-k rest) deselect it.
echo "== end-to-end test on Docker Swarm"
"$venv/bin/python" -m pytest tests/e2e/test_swarm.py "$@" || [ $? -eq 5 ]
