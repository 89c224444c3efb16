"""Pure audio DSP: PCM formats, streaming resamplers, the room mixer, the level meter and WAV files.

Pure logic over numpy and the standard library: imports no asyncio, discord or websockets, and nothing else of the
bot; every other room may use it.
"""
