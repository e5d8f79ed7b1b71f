"""Derived data by the hour: silver parts, gap windows, checks and marts of every configured
stream, refreshed in one process per run (hour.py), without Dagster."""
