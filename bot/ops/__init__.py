"""Running the bot as a service: the supervisor of a cluster of bot processes, the health and metrics HTTP server,
the Prometheus metrics every room feeds, event-loop lag, and a clean shutdown on SIGTERM.

``metrics`` (with ``store_timing``) is pure -- prometheus-client and the Realtime outputs it counts -- so any room may
feed it with one call; the rest are drivers (asyncio, aiohttp, discord.py, subprocesses) that the process shell uses
and that import no session, shell or cog module.
"""
