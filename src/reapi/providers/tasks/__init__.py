"""Task upstream adapters: one module per upstream task API behind ``base.TaskAdapter``."""
