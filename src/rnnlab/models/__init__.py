"""Models: a task's shape around cells (one module per model)."""
