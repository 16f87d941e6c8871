"""lorag training."""
