"""The gRPC command-line client."""
