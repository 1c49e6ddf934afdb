"""Evaluation: the synthetic long-video world, benchmark adapters, metrics and reports."""
