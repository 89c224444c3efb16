"""The shared room's rules: who is heard and answered, when speech over the bot is a real interruption, who spoke a
turn, and how long each part of a turn took.

Pure logic with the clock passed in: imports only :mod:`bot.audio` (levels) and the standard library, never
asyncio, discord, websockets or the live session (:mod:`bot.session`) that applies these rules.
"""
