"""Drives a running compose stack of the suite: shared by the end-to-end tests and the benchmark."""
