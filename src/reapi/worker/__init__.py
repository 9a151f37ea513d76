"""Background work of the task gateway: task workers, webhook delivery, media expiry.

Depends on services and storage, never on the HTTP layer: the same code runs inside
``reapi serve`` and in standalone ``reapi worker`` processes.
"""
