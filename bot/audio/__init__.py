"""Pure audio DSP: formats, streaming resamplers, mixer and level meter (no asyncio, discord or websockets)."""
