"""lorag eval."""
