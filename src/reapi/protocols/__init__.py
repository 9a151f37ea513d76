"""Wire formats and translation between them. Pure code: no I/O, no clocks, no settings."""
