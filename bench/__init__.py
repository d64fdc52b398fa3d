"""Ratio benchmarks: each compares two ways of doing one job side by side in the same run."""
