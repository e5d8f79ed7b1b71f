"""DuckDB marts."""
