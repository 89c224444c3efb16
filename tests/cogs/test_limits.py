"""The longest replies each command can produce fit Discord's limits (Discord answers a longer one with HTTP 400
and the user sees nothing): fed the longest values through the real cogs and the session's status embed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import discord
import pytest

from bot import texts
from bot.app import VoiceBot
from bot.persona import FACT_KEYS, default_persona
from bot.session.record import SessionRecord
from bot.session.state import SessionState
from bot.store import GuildSettings
from bot.store.sqlite import SqliteStore
from bot.texts import fit
from cogs._base import UserFacingError, fit_embed, report_error
from cogs.voice import help_embed
from cogs.voice_admin import settings_embed
from tests.cogs.conftest import interaction
from tests.discord_world import World

ALICE, BOB = 5, 6
LONGEST_NAME = "N" * 300


def assert_fits(embed: discord.Embed | None = None, content: str | None = None) -> None:
    if content is not None:
        assert len(content) <= fit.MESSAGE_CHARS
    if embed is None:
        return
    assert len(embed) <= fit.EMBED_TOTAL_CHARS  # discord.py counts what Discord counts
    assert len(embed.title or "") <= fit.EMBED_TITLE_CHARS
    assert len(embed.description or "") <= fit.EMBED_DESCRIPTION_CHARS
    assert len(embed.fields) <= fit.EMBED_FIELDS
    assert len(embed.footer.text or "") <= fit.EMBED_FOOTER_CHARS
    for field in embed.fields:
        assert 0 < len(field.name or "") <= fit.EMBED_FIELD_NAME_CHARS
        assert 0 < len(field.value or "") <= fit.EMBED_FIELD_VALUE_CHARS


def verbose_persona(path: Path) -> None:
    facts = "\n".join(f'{key} = "{key[:1] * 1500}"' for key in FACT_KEYS)
    path.write_text(f'name = "{LONGEST_NAME}"\nage = 30\nstyle = "{"s" * 9000}"\n[facts]\n{facts}\n', encoding="utf-8")


async def test_persona_show_of_the_most_verbose_persona_fits(bot: VoiceBot, world: World, tmp_path: Path) -> None:
    verbose_persona(tmp_path / "personas" / "verbose.toml")
    await bot.store.update(world.guild.id, {"persona": "verbose"})
    persona = bot.get_cog("PersonaCog")
    fake = interaction(bot, world, ALICE)
    await persona.show.callback(persona, fake.as_interaction())  # type: ignore[union-attr]
    embed = fake.last.embed
    assert embed is not None and embed.title is not None and embed.title.endswith(fit.ELLIPSIS)
    assert_fits(embed)
    assert embed.fields[-1].name == fit.ELLIPSIS  # says that facts were left out


async def test_the_unknown_persona_reply_fits_with_many_persona_files(
    bot: VoiceBot, world: World, tmp_path: Path
) -> None:
    for n in range(121):  # names of 64 characters, the longest a persona file may have
        stem = ("persona-with-a-rather-long-file-name-" * 2)[:61] + f"{n:03}"
        (tmp_path / "personas" / f"{stem}.toml").write_text('name = "x"\nage = 1\nstyle = "y"\n', encoding="utf-8")
    admin = bot.get_cog("PersonaAdminCog")
    fake = interaction(bot, world, BOB)
    with pytest.raises(UserFacingError) as refused:
        await admin.set_.callback(admin, fake.as_interaction(), "g" * 100)  # type: ignore[union-attr]
    await report_error(fake.as_interaction(), refused.value)
    assert_fits(content=fake.last.content)
    assert fake.last.content is not None and "and 104 more (type to search)" in fake.last.content  # 124 known


async def test_status_with_sixty_recent_speakers_fits(tmp_path: Path) -> None:
    store = await SqliteStore.in_data_dir(tmp_path)
    persona = default_persona()
    state = SessionState(
        guild_id=1, persona=persona, settings=GuildSettings(), now=lambda: 100.0, today=lambda: "2026-11-30"
    )
    names = {uid: f"{'member-with-a-long-name'}-{uid:04}" for uid in range(60)}
    record = SessionRecord(state, store, member_names=lambda: names)
    for uid in names:
        record.turn_spoken_by(frozenset({uid}), 99.0)
    raw = record.status_embed(channel_id=10**18, uptime_s=10**6, today_minutes=1e6, today_cost_usd=1e6)
    speakers = {f.name: f.value for f in raw.fields}["Recent speakers"]
    assert speakers is not None and speakers.endswith(" more")  # whole names, then how many more
    assert all(name in names.values() for name in speakers.split(", ")[:-1])
    assert_fits(raw)
    assert_fits(fit_embed(raw))
    await store.close()


async def test_settings_help_and_every_sentence_with_the_longest_values_fit(bot: VoiceBot, world: World) -> None:
    longest = GuildSettings(
        persona="p" * 100, voice="v" * 100, transcript_channel_id=2**63 - 1, daily_budget_min=1440.0
    )
    assert_fits(fit_embed(settings_embed(bot, longest)))
    assert_fits(help_embed())  # short as written: nothing cut
    assert fit_embed(help_embed()).to_dict() == help_embed().to_dict()
    channel = f"<#{2**63 - 1}>"
    for sentence in (
        texts.consent_notice(LONGEST_NAME * 3, channel, "h" * 253, transcripts=True),
        texts.moved_fresh(channel, LONGEST_NAME * 3),
        texts.joined(channel, LONGEST_NAME * 3),
        texts.in_use(channel, 99),
        texts.budget_spent(1440, 86400),
        texts.channel_full(channel, 99, 99),
        texts.stage_cannot_speak(channel),
        texts.transcript_channel_unusable(channel, ["View Channel", "Send Messages", "Embed Links"]),
        texts.forgotten(10**9, 10**6),
        texts.forgot_you(10**9, True),
        texts.cooldown("join", 3600),
        texts.FORGET_CONFIRM,
    ):
        assert_fits(content=fit.fit_message(sentence))
    # a name of 900 characters is cut in the join reply, never refused by Discord
    long_reply = texts.joined(channel, "n" * 2500)
    assert len(long_reply) > fit.MESSAGE_CHARS and fit.fit_message(long_reply).endswith(fit.ELLIPSIS)


async def test_every_reply_goes_through_the_fitting(bot: VoiceBot, world: World) -> None:
    from cogs._base import reply

    fake = interaction(bot, world, ALICE)
    embed = discord.Embed(title="t" * 400, description="d" * 5000)
    for n in range(30):
        embed.add_field(name=f"field {n}", value="v" * 2000)
    await reply(fake.as_interaction(), "c" * 2500, embed=embed)
    assert_fits(fake.last.embed, fake.last.content)
    sent: Any = fake.last
    assert sent.content.endswith(fit.ELLIPSIS)
