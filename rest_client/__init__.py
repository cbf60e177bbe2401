"""The REST command-line client."""
