"""Shared test helpers: ``check_op`` (every op) and hypothesis strategies."""
