"""The benchmark: end-to-end throughput and latency per protocol against the database's own ceiling."""
