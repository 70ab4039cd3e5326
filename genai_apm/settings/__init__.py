"""Settings: the one typed, frozen ``Settings`` (config.py: defaults, TOML file, environment,
and every check of a value), and Managed Flink's runtime properties as overrides
(app_properties.py)."""
