"""Benchmarks: the registry of benchmark tasks with their published numbers, and the runner
behind ``rnnlab bench``."""
