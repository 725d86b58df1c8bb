"""Datasets: corpora, vocabularies, synthetic tasks, batching, and where the files come from."""
