"""Models: task heads around recurrent layers (language model, classifier, ...)."""
