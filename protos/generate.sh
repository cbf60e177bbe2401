#!/usr/bin/env bash
# Generates the Python gRPC code from protos/ into the folder given (never
# committed): used by the Dockerfile and by the test command.
#   bash protos/generate.sh OUT_DIR   (needs grpcio-tools in the current python)
set -euo pipefail
out=${1:?usage: protos/generate.sh OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$here"
# Typed stubs of the service classes for mypy, where mypy-protobuf is installed
# (the test environment; the images do not need them).
typed=()
if command -v protoc-gen-mypy_grpc >/dev/null 2>&1; then typed=(--mypy_grpc_out="$out"); fi
python -m grpc_tools.protoc -I . --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" "${typed[@]}" \
  $(find . -name '*.proto' | sort)
echo "generated gRPC code in $out"
