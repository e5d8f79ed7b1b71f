"""Pure asset-check logic."""
