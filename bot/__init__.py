"""A Discord voice bot that talks through the OpenAI Realtime API."""

__version__ = "0.1.0"
