"""Operator state: one key-value store per stateful operator, committed atomically with offsets."""
