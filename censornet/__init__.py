"""censornet package."""
