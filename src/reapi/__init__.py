"""reapi: an AI API gateway with exact billing and faithful protocol translation."""

__version__ = "0.1.0"
