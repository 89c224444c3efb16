"""A local Realtime-compatible server that ships with the bot, for a first run without any account.

A driver room (asyncio and websockets) that may import the audio DSP, the persona, the Realtime wire events and the
texts; never the voice, the session, the shell or the cogs.

``peer`` is the server side of one WebSocket connection (the wire events, a small energy VAD over the received
audio), ``server`` serves a script per connection on loopback, ``model`` is the stand-in for the model (it hears
the end of a spoken turn, calls ``get_your_info`` and speaks the answer), and ``voice`` renders that answer with
espeak-ng when it is installed, else as a tone. ``python -m bot simulate --offline`` and ``python -m bot
fake-server`` run it; the tests' scriptable server builds on the same peer and server.
"""
