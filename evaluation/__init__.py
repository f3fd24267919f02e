"""Retrieval quality as numbers: the evaluation harness behind `vitrine eval` and its baselines."""
