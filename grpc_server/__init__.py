"""The gRPC server, with the standard health checking and reflection services."""
