"""Function tools for the Realtime model: a registry that turns typed, documented Python functions into tool
schemas, validates the model's arguments and runs the call with a time limit.

Pure logic (threads for the time limit, no asyncio, discord or websockets); imports nothing else of the bot. The
persona's ``get_your_info`` is registered by :mod:`bot.persona.toolset`.
"""

from __future__ import annotations

from bot.tools.registry import ToolArgumentError, ToolRegistry, ToolResult, parse_docstring

__all__ = ["ToolArgumentError", "ToolRegistry", "ToolResult", "parse_docstring"]
