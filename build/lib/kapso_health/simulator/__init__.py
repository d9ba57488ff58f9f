"""The built-in Kapso simulator: a real HTTP server on loopback for demo, tests and benchmarks."""
