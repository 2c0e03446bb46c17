"""ffzero."""
