"""Task heads: models that put cells to work on a task."""
