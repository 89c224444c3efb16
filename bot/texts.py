"""Every sentence the bot says to users, in one place (short, friendly, ready for translation).

Nothing here may contain a secret: messages are built from ids, names and numbers only.
"""

from __future__ import annotations

from bot.session.limits import StopReason

NOT_IN_GUILD = "This command only works in a server."
CALLER_NOT_IN_VOICE = "Join a voice channel first, then run `/voice join` again."
CALLER_NOT_WITH_BOT = "You need to be in my voice channel to do that."
NOT_CONNECTED = "I'm not in a voice channel here. Use `/voice join` to bring me in."
NOT_MANAGER = "Only members with **Manage Server** (or the bot manager role) can change that."
GENERIC_ERROR = "Something went wrong on my side. Please try again in a moment."
BUSY_JOINING = "I'm already joining a channel here, one moment."
LEFT = "Left the voice channel. Bye!"
RESET = "Started a fresh conversation. I've forgotten what we talked about."
DATA_DELETED = "Deleted everything I stored for this server ({rows} records)."
SETTINGS_SAVED = "Settings saved."
VOICE_CONNECT_FAILED = "I couldn't connect to that voice channel. Please try again in a moment."
REALTIME_FAILED = "I couldn't reach my voice brain ({reason}). Please try again later."
PLAYBACK_FAILED = "I lost my voice in this channel, so I'm leaving. Use /voice join to bring me back."
PROCESS_FULL = "I'm in as many voice channels as I can handle right now. Please try again in a few minutes."
RESTARTING = "I'm restarting for a moment and will be back soon. Use `/voice join` to bring me back."
DAVE_REQUIRED = (
    "Discord requires end-to-end voice encryption (DAVE) and my voice library could not provide it. "
    "Ask the bot's owner to update it."
)


def missing_permissions(channel_mention: str, names: list[str]) -> str:
    return f"I need the {', '.join(f'**{n}**' for n in names)} permission in {channel_mention}."


def joined(channel_mention: str, persona_name: str) -> str:
    return f"Joined {channel_mention}. Say hi to **{persona_name}**! Use `/voice leave` when you're done."


def moved(channel_mention: str) -> str:
    return f"Moved to {channel_mention}."


def persona_set(name: str) -> str:
    return f"Persona set to **{name}**. It takes effect on the next `/voice join` or `/voice reset`."


def unknown_persona(name: str, known: list[str]) -> str:
    return f"There is no persona called `{name}`. Known: {', '.join(f'`{k}`' for k in known)}."


def bad_persona(name: str, reason: str) -> str:
    return f"The persona `{name}` could not be loaded: {reason}"


def invalid_setting(reason: str) -> str:
    return f"That setting was not saved: {reason}."


def session_ended(reason: StopReason) -> str:
    if reason is StopReason.ALONE:
        return "Everyone left, so I did too."
    if reason is StopReason.MAX_LENGTH:
        return "That's the longest a single session can last. Use `/voice join` to start a new one."
    return "This server has used today's voice minutes. See you tomorrow!"


def transcript_line(speaker: str, text: str) -> str:
    return f"**{speaker}:** {text}"


def tool_call_line(name: str, arguments: str, output: str, limit: int = 120) -> str:
    def short(value: str) -> str:
        return value if len(value) <= limit else value[: limit - 1] + "…"

    return f"-# 🔧 `{name}({short(arguments)})` → `{short(output)}`"


TRANSCRIPTS_NOTICE = (
    "📝 Transcripts are on: what people say here is posted in this chat. "
    "Use `/voice privacy` to keep your words out of it."
)
EXPORTED = "Here is everything I store for this server: settings, usage counters and privacy choices (ids only)."
PRIVACY_SAVED = "Saved. Transcripts: {transcripts}. Listening: {listening}."
PUSH_TO_TALK_ON = "🎙️ You have the floor: I hear you. Run `/voice talk` again to stop."
PUSH_TO_TALK_OFF = "🔇 Push-to-talk off: I no longer hear you."
NOT_PUSH_TO_TALK = "Push-to-talk is not on here. A manager can set it with `/voice settings mode:push-to-talk`."

_MODES = {
    "always": "answers everyone",
    "name": "answers when called by name",
    "push-to-talk": "hears only people holding the floor (`/voice talk`)",
}


def mode_description(mode: str) -> str:
    return f"`{mode}`: {_MODES.get(mode, mode)}"


def hidden_turn_line() -> str:
    """A turn by someone who opted out of transcripts: no name and no words."""
    return "**(someone):** …"


def name_mode_tip(persona_name: str) -> str:
    return (
        f"💡 Several people are here. To have {persona_name} answer only when called by name, "
        "a manager can run `/voice settings mode:name`."
    )


def goodbye_prompt(notice: str) -> str:
    """What the persona is asked to say, in its own voice, when a limit ends the session."""
    return f"(The session is ending now. Tell everyone briefly, in your own words and in character: {notice})"
