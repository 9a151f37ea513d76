"""Access log and Prometheus metrics: what operators see of each call."""
