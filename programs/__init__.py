"""Bundled policy programs (``*.s``) and scenarios (``*.toml``): data only."""
