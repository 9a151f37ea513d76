"""Domain services: the decisions (who may call, which channel, what it costs). No HTTP here."""
