"""The Realtime protocol core (sans-I/O) and its asyncio driver."""
