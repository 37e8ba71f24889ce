"""Scenarios: the TOML schema, attaching programs, the runner."""
