"""The HTTP surface: thin handlers that parse, call one service and render."""
