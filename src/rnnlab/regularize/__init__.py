"""Regularisation and normalisation for recurrent networks."""
