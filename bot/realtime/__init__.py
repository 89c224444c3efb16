"""The Realtime client: the protocol core (sans-I/O: events, the state machine, usage and cost, errors, retry policy)
and its asyncio drivers (:mod:`.driver`, :mod:`.connection`, :mod:`.simulate`, :mod:`.entra`).

The core imports no asyncio, discord or websockets; it may use the pure rooms (audio, persona, tools, store records,
configuration, secrets) and the metrics. Nothing here imports the voice, the session, the shell or the cogs.
"""
