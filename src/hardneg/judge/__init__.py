"""Judging: templates, verdict parsing, judges, the judgment store and the cascade."""
