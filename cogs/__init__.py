"""discord.py extensions (cogs) loaded by the bot at start-up."""
