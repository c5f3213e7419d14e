"""``quorum eval``: measure whether precise mode makes answers right."""
