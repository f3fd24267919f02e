"""Search that learns from operators' picks: `vitrine learn`, learned model versions, promotion and rollback."""
