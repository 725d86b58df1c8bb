"""Models: a task's shape around the recurrent layers (embeddings, encoders, output heads)."""
