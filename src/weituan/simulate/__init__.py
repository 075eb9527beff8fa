"""A world generator and agent simulation for the demo, tests and benchmarks."""
