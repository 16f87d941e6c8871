"""lorag serving."""
