"""A/B experiments: config (TOML), sticky assignment, event attribution and the report."""
