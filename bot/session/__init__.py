"""One guild's live conversation: the registry of sessions, how one is built from its links (voice, Realtime,
playback), the session itself split by responsibility (audio routing, turn-taking, the record, the lifetime), its
limits, posting to text chat and the permission rules of the commands.

The asyncio layer: it may import every room below it (audio, voice, realtime, persona, tools, room, store), never
:mod:`bot.app` or the cogs. :mod:`.limits` is pure logic. This ``__init__`` imports nothing, so importing a pure
module of the room does not load discord.
"""
