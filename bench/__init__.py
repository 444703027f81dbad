"""gcdial benchmarks: each measures one thing as a ratio against a baseline run beside it."""
