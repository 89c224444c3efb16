"""Every sentence the bot says to users, in one place (short, friendly, ready for translation), and how a reply is
made to fit Discord's size limits (:mod:`.fit`).

Nothing here may contain a secret: messages are built from ids, names and numbers only. Pure logic (no asyncio,
discord or websockets); of the bot it imports only the session limits' reasons (:mod:`bot.session.limits`).
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
RESET = "Started a fresh conversation. I've forgotten what we talked about."
STORE_UNAVAILABLE = "I could not reach my settings store just now (it is busy or down). Please try again in a moment."
DATA_DELETED = "Deleted everything I stored for this server ({rows} records)."
SETTINGS_SAVED = "Settings saved."
VOICE_CONNECT_FAILED = "I couldn't connect to that voice channel. Please try again in a moment."
REALTIME_FAILED = "I couldn't reach my voice brain ({reason}). Please try again later."
ANSWER_FAILED = "Sorry, I lost my train of thought ({reason}). Could you say that again?"
COST_UNKNOWN = "cost unknown"
SETTINGS_REFUSED = "My voice brain refused the new settings ({reason}), so I'm keeping the previous ones."
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


def settings_saved(voice_changed: bool) -> str:
    """The ``/voice-admin settings`` reply header: the voice cannot change mid-session (the API locks it once the bot
    has spoken), so a new one waits for the next session."""
    if voice_changed:
        return f"{SETTINGS_SAVED} The new voice starts with the next session: use `/voice reset` or join again."
    return SETTINGS_SAVED


def persona_set(name: str) -> str:
    return f"Persona set to **{name}**. It takes effect on the next `/voice join` or `/voice reset`."


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
EXPORTED = (
    "Here is everything I store for this server: settings, usage counters and privacy choices (by id), and the "
    "server's own personas."
)
PRIVACY_SAVED = "Saved. Transcripts: {transcripts}. Listening: {listening}."
PUSH_TO_TALK_ON = "🎙️ You have the floor: I hear you. Run `/voice talk` again to stop."
PUSH_TO_TALK_OFF = "🔇 Push-to-talk off: I no longer hear you."
NOT_PUSH_TO_TALK = "Push-to-talk is not on here. A manager can set it with `/voice-admin settings mode:push-to-talk`."

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
        "a manager can run `/voice-admin settings mode:name`."
    )


def goodbye_prompt(notice: str) -> str:
    """What the persona is asked to say, in its own voice, when a limit ends the session."""
    return f"(The session is ending now. Tell everyone briefly, in your own words and in character: {notice})"


# -- who controls the bot, what everyone is told (issue 13) ------------------------------------------------------

ALREADY_HERE = "I'm already here in {channel}. Use `/voice reset` for a fresh conversation."
OPT_OUT_TIP = "`/voice privacy`"


def in_use(channel_mention: str, humans: int) -> str:
    people = "1 person" if humans == 1 else f"{humans} people"
    return f"I'm in use in {channel_mention} ({people}); a manager can move me."


def moved_fresh(channel_mention: str, persona_name: str) -> str:
    return (
        f"Moved to {channel_mention}. This is a fresh conversation: **{persona_name}** remembers nothing said in "
        "the other channel."
    )


def consent_notice(persona_name: str, channel_mention: str, recipient: str, transcripts: bool) -> str:
    """The public notice on every join and move: that the bot listens, who gets the audio, and how to opt out."""
    posted = (
        "Transcripts are **on**: what people say is posted in text chat."
        if transcripts
        else "Transcripts are **off**: nothing said is posted."
    )
    return (
        f"🎙️ **{persona_name}** is listening in {channel_mention}. What people say here is sent to **{recipient}** "
        f"so the bot can answer. {posted} Use {OPT_OUT_TIP} to keep your words out of transcripts, or your voice "
        "from the bot; `/voice help` lists the commands."
    )


def left_channel(channel_mention: str) -> str:
    return f"Left {channel_mention}. Bye!"


def budget_spent(budget_min: float, resets_in_s: float) -> str:
    hours, minutes = divmod(max(1, int(resets_in_s // 60)), 60)
    wait = f"{hours} h {minutes} min" if hours else f"{minutes} min"
    return (
        f"This server has used today's {budget_min:g} voice minutes, so I won't join. "
        f"They reset at 00:00 UTC (in {wait})."
    )


def channel_full(channel_mention: str, present: int, limit: int) -> str:
    return (
        f"{channel_mention} is full ({present}/{limit}). Make room, or give me **Move Members** there: "
        "with it I can join a full channel."
    )


def stage_cannot_speak(channel_mention: str) -> str:
    return (
        f"On the stage {channel_mention} I would be muted: I need **Mute Members** there to become a speaker, "
        "or **Request to Speak** to ask a stage moderator."
    )


def stage_requested(channel_mention: str) -> str:
    return f"I asked to speak on {channel_mention}: a stage moderator must invite me up before anyone hears me."


def transcript_channel_unusable(channel_mention: str, missing: list[str]) -> str:
    return (
        f"I can't post transcripts in {channel_mention}: I need {', '.join(f'**{n}**' for n in missing)} there. "
        "Nothing was saved."
    )


def budget_above_operator(limit_min: float) -> str:
    return f"The daily budget can be at most {limit_min:g} minutes on this bot (0 is not allowed: it means no limit)."


def setting_reset(name: str) -> str:
    return f"`{name}` is back to its default."


def cooldown(command: str, retry_after_s: float) -> str:
    return f"Slow down a little: you can use `/voice {command}` again in {max(1, round(retry_after_s))} s."


FORGET_CONFIRM = (
    "Delete this server's settings, usage counters and talk time? Members' opt-outs are **kept**, so nobody who "
    "opted out is heard again by accident. This cannot be undone."
)
FORGET_CANCELLED = "Nothing was deleted."
CONFIRM_NOT_YOURS = "Only the person who ran the command can answer this."
CONFIRM_EXPIRED = "No answer in time, so nothing was deleted."


def forgotten(rows: int, opt_outs: int) -> str:
    kept = f" {opt_outs} member opt-out(s) are kept so nobody is heard again by accident." if opt_outs else ""
    return f"Deleted this server's settings, usage and talk time ({rows} records).{kept}"


def forgot_you(rows: int, kept_opt_out: bool) -> str:
    kept = " Your opt-out is kept, so I still won't use your voice or words." if kept_opt_out else ""
    return f"Deleted what I stored about you in this server ({rows} records of talk time).{kept}"


UNKNOWN_PERSONA_SHOWN = 20


def unknown_persona_short(name: str, known: list[str]) -> str:
    """No persona called ``name``: at most :data:`UNKNOWN_PERSONA_SHOWN` known names (the autocomplete has all)."""
    shown = ", ".join(f"`{k}`" for k in known[:UNKNOWN_PERSONA_SHOWN])
    more = (
        f" and {len(known) - UNKNOWN_PERSONA_SHOWN} more (type to search)" if len(known) > UNKNOWN_PERSONA_SHOWN else ""
    )
    return f"There is no persona called `{name}`. Known: {shown}{more}."


SETTINGS_TITLE = "Voice settings"
SETTINGS_CURRENT = "Current settings for this server. Change them with `/voice-admin settings`."
DEFAULT_WORD = "default"
NO_BUDGET = "no limit"

#: ``/voice help``: (title, description, fields). Short enough for one embed.
HELP_TITLE = "How to talk with me"
HELP_DESCRIPTION = (
    "Join a voice channel and run `/voice join`; I answer whoever talks, and stop when you talk over me. "
    "What you say is sent to the bot's model provider to answer."
)
HELP_FIELDS: tuple[tuple[str, str], ...] = (
    (
        "Everyone",
        "`/voice join` · `/voice leave` · `/voice reset` (fresh conversation) · `/voice say` (type instead of "
        "talk) · `/voice talk` (push-to-talk) · `/voice status` · `/voice usage` · `/persona show`",
    ),
    (
        "Your data",
        "`/voice privacy` keeps your words out of transcripts, or your voice from the bot altogether. "
        "`/voice forget-me` deletes what I stored about you (your opt-out stays).",
    ),
    (
        "Modes",
        "`always`: I answer everyone · `name`: only when called by name · `push-to-talk`: I hear only people "
        "holding the floor (`/voice talk`).",
    ),
    (
        "Managers",
        "`/voice-admin settings` (mode, voice, transcripts, budget…), `/voice-admin export`, `/voice-admin forget`, "
        "`/persona-admin set`, and `/persona-admin create` for a persona of your own. While people are with me, only "
        "a manager can move me elsewhere.",
    ),
)


# -- the command line (stderr and stdout of ``python -m bot``) --------------------------------------------------------

CLI_DESCRIPTION = (
    "A Discord voice bot that talks through an OpenAI Realtime session.\n"
    "Without a command it runs the bot (DISCORD_TOKEN and a Realtime key in .env)."
)
CLI_EPILOG = (
    "First run without any account (a local server answers):\n"
    "  voicebot simulate --offline --input question.wav --output answer.wav"
)
BOT_CONFIG_PROBLEMS = "The bot cannot start; fix these settings (environment or .env):"
SIMULATE_CONFIG_PROBLEMS = (
    "simulate has no Realtime server to talk to; fix these settings (environment or .env), "
    "or give --url, or try --offline (a local server, no account needed):"
)


def missing_env_file(path: str) -> str:
    return f"error: the settings file {path} given with --env-file does not exist."


def bad_number(value: str, what: str) -> str:
    """``what`` says what the number is, e.g. "a number of seconds above 0"."""
    return f"{what} (got {value!r})"


def voice_espeak(program: str) -> str:
    return f"answers are spoken by {program}"


def voice_tone(frequency_hz: float, program: str) -> str:
    return (
        f"answers are a {frequency_hz:.0f} Hz tone ({program} is not installed; "
        f"`apt-get install {program}` makes them speech)"
    )


def offline_server(url: str, voice: str) -> str:
    return f"offline: a local Realtime server at {url} answers (no account needed); {voice}"


def fake_server_listening(url: str, dialect: str, voice: str, key_required: bool) -> str:
    key = "clients must send the key given with --api-key" if key_required else "any API key (or none) is accepted"
    return (
        f"local Realtime server ({dialect.upper()}) listening on {url}; {key}; {voice}.\n"
        f"Try: voicebot simulate --url {url}{' --api-key KEY' if key_required else ''} "
        "--input question.wav --output answer.wav\n"
        "Ctrl-C stops it."
    )


def cannot_listen(host: str, port: int, reason: str) -> str:
    return f"error: cannot listen on {host}:{port}: {reason}"


# -- server personas (``/persona-admin``) ----------------------------------------------------------------------


def persona_choice_label(key: str, server: bool) -> str:
    """How ``/persona-admin`` autocompletes a persona: the server's own, or shared by the bot's owner."""
    return f"{key} (this server's)" if server else f"{key} (shared)"


def persona_form_title(key: str, editing: bool) -> str:
    return f"{'Edit' if editing else 'New'} persona: {key}"[:45]  # Discord's limit for a form's title


def persona_exists(key: str) -> str:
    return f"This server already has a persona `{key}`: change it with `/persona-admin edit`."


def persona_key_taken(key: str) -> str:
    return f"`{key}` is one of the bot's shared personas; give yours another key."


def no_server_persona(key: str) -> str:
    return f"This server has no persona `{key}` (`/persona-admin create` makes one)."


def too_many_personas(limit: int) -> str:
    return f"This server already has {limit} personas, the most it may keep: delete one first."


def persona_invalid(reason: str) -> str:
    return f"That persona was not saved: {reason}"


def persona_saved(key: str, name: str, created: bool) -> str:
    what = "Made" if created else "Saved"
    return (
        f"{what} the persona `{key}` (**{name}**). Add facts with `/persona-admin fact`; choose it with "
        "`/persona-admin set` (it takes effect on the next `/voice join` or `/voice reset`)."
    )


def fact_saved(key: str, fact: str, removed: bool) -> str:
    return f"{'Removed' if removed else 'Saved'} the fact `{fact}` of `{key}`."


def persona_file_too_large(filename: str, limit_bytes: int) -> str:
    return f"`{filename}` is larger than a server persona may be ({limit_bytes:,} bytes)."


def persona_imported(key: str, name: str, created: bool) -> str:
    return f"{'Imported' if created else 'Replaced'} the persona `{key}` (**{name}**)."


def persona_exported(key: str) -> str:
    return f"Here is the persona `{key}` as a TOML file (the format `/persona-admin import` reads)."


def persona_delete_confirm(key: str, name: str) -> str:
    return f"Delete this server's persona `{key}` (**{name}**)? This cannot be undone."


def persona_deleted(key: str) -> str:
    return f"Deleted the persona `{key}`. If it was chosen, the bot's own persona takes its place."
