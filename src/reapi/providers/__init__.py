"""Upstream adapters: one module per upstream API behind the small ``Provider`` interface."""
