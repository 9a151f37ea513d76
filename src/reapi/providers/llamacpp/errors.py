"""The one error the local-model provider raises when it cannot offer a working upstream.

Every message is a single line an operator can act on, because it ends up in a startup log or
a 503 body, not in a traceback anyone reads.
"""

from __future__ import annotations

INSTALL_HINT = "install it with: pip install 'reapi[local]'"


class LocalModelUnavailable(RuntimeError):
    """The local llama-server cannot be started or kept serving.

    Raised for a missing ``local`` extra, a model that cannot be assembled or found, and a server
    that does not become healthy in time. ``message`` is one line and names the fix.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
