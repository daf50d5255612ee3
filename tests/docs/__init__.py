"""The docs harness and its tests (tests/docs/harness.py)."""
