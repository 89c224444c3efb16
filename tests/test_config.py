from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config, parse_env_file, read_env_file

OPENAI_KEY = "sk-test-abcdefghijklmnop"
TOKEN = "MTIzNDU2Nzg5.discord.token-value"


def base_env(**extra: str) -> dict[str, str]:
    env = {"DISCORD_TOKEN": TOKEN, "OPENAI_API_KEY": OPENAI_KEY}
    env.update(extra)
    return env


def test_minimal_openai_config_has_defaults() -> None:
    config = load_config(base_env(), env_file=None)
    assert config.realtime.provider == "openai"
    assert config.realtime.model == "gpt-realtime-1.5"
    assert config.realtime.transcription_model == "gpt-transcribe"
    assert config.realtime.effective_dialect == "ga"
    assert config.data_dir == Path("data")
    assert config.log_level == "INFO"
    assert config.discord_token is not None and config.discord_token.reveal() == TOKEN


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"REALTIME_PROVIDER": "azure", "IDLE_LEAVE_S": "soon", "LOG_LEVEL": "loud"}, env_file=None)
    problems = caught.value.problems
    assert any(p.startswith("DISCORD_TOKEN is not set: create a bot at https://") for p in problems)
    assert any(p.startswith("AZURE_OPENAI_ENDPOINT is not set") for p in problems)
    assert any(p.startswith("AZURE_OPENAI_API_KEY is not set") for p in problems)
    assert any(p.startswith("AZURE_OPENAI_DEPLOYMENT is not set") for p in problems)
    assert any(p.startswith("IDLE_LEAVE_S must be a plain number") for p in problems)
    assert any(p.startswith("LOG_LEVEL must be one of") for p in problems)
    assert len(problems) == 6


def test_discord_token_optional_for_simulate() -> None:
    config = load_config({"OPENAI_API_KEY": OPENAI_KEY}, env_file=None, require_discord=False)
    assert config.discord_token is None


def test_azure_v1_is_ga_and_preview_is_beta() -> None:
    azure = {
        "REALTIME_PROVIDER": "azure",
        "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com/",
        "AZURE_OPENAI_API_KEY": "azure-key-123456",
        "AZURE_OPENAI_DEPLOYMENT": "my-realtime",
    }
    v1 = load_config(base_env(**azure), env_file=None).realtime
    assert v1.effective_dialect == "ga"
    assert v1.azure_endpoint == "https://res.openai.azure.com"
    assert v1.model == "my-realtime"
    preview = load_config(base_env(**azure, AZURE_OPENAI_API_VERSION="2024-10-01-preview"), env_file=None)
    assert preview.realtime.effective_dialect == "beta"
    forced = load_config(base_env(**azure, REALTIME_DIALECT="GA", AZURE_OPENAI_API_VERSION="x"), env_file=None)
    assert forced.realtime.effective_dialect == "ga"
    dated = load_config(base_env(**azure, AZURE_OPENAI_API_VERSION="2025-08-28"), env_file=None)
    assert dated.realtime.effective_dialect == "ga"  # only a preview version selects the preview protocol


def test_azure_signs_in_with_an_entra_token_or_command_instead_of_a_key() -> None:
    azure = {
        "REALTIME_PROVIDER": "azure",
        "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com",
        "AZURE_OPENAI_DEPLOYMENT": "my-realtime",
    }
    with pytest.raises(ConfigError) as caught:
        load_config(base_env(**azure), env_file=None)
    assert "AZURE_OPENAI_AD_TOKEN" in caught.value.problems[0]
    token = load_config(base_env(**azure, AZURE_OPENAI_AD_TOKEN="eyJ-entra-123456"), env_file=None)
    assert token.realtime.api_key is None and token.realtime.azure_ad_token is not None
    assert "eyJ" not in repr(token) and token.realtime.azure_ad_token in token.secrets()
    command = load_config(base_env(**azure, AZURE_OPENAI_AD_TOKEN_COMMAND="az account get-access-token"), env_file=None)
    assert command.realtime.azure_ad_token_command == "az account get-access-token"
    named = load_config(
        base_env(**azure, AZURE_OPENAI_AD_TOKEN="t-1234", REALTIME_TRANSCRIPTION_MODEL="x-stt"), env_file=None
    )
    assert named.realtime.transcription_model == "x-stt"


def test_custom_provider_needs_a_websocket_url() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(base_env(REALTIME_PROVIDER="custom", REALTIME_URL="http://x"), env_file=None)
    assert caught.value.problems == ["REALTIME_URL must be a ws:// or wss:// URL (got 'http://x')."]
    config = load_config(base_env(REALTIME_PROVIDER="custom", REALTIME_URL="ws://127.0.0.1:9/v1"), env_file=None)
    assert config.realtime.url == "ws://127.0.0.1:9/v1"
    assert config.realtime.api_key is None


def test_env_file_is_read_and_environment_overrides_it(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\nexport DISCORD_TOKEN='from-file-token'\nOPENAI_API_KEY=\"sk-file-key-xyz\"\n"
        "LOG_LEVEL=debug # trailing comment\nREALTIME_VOICE=cedar\n",
        encoding="utf-8",
    )
    config = load_config({"REALTIME_VOICE": "marin"}, env_file=env_file)
    assert config.discord_token is not None and config.discord_token.reveal() == "from-file-token"
    assert config.realtime.api_key is not None and config.realtime.api_key.reveal() == "sk-file-key-xyz"
    assert config.log_level == "DEBUG"
    assert config.realtime.voice == "marin"


def test_env_file_quotes_comments_bom_and_export_are_read_like_a_shell(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_bytes(
        '\ufeffOPENAI_API_KEY="sk-quoted-key"  # the key\n'
        "export DISCORD_TOKEN='tok en'\n"
        "REALTIME_VOICE=cedar # a comment\n"
        'MANAGER_ROLE="Voice # mods"\n'
        "PERSONA_FILE=\n"
        "REALTIME_MODEL=gpt-$realtime\n".encode()
    )
    config = load_config({}, env_file=env_file)
    assert config.realtime.api_key is not None and config.realtime.api_key.reveal() == "sk-quoted-key"
    assert config.discord_token is not None and config.discord_token.reveal() == "tok en"
    assert config.realtime.voice == "cedar"
    assert config.manager_role == "Voice # mods"
    assert config.persona_file is None
    assert config.realtime.model == "gpt-$realtime"  # kept as written: no variable expansion


def test_parse_env_file_reports_lines_it_cannot_read() -> None:
    values, problems = parse_env_file("no equals sign\nA=1\n  B = two words \nC\n", "my.env")
    assert values == {"A": "1", "B": "two words"}  # C without "=" sets nothing
    assert problems == [
        "my.env line 1 is not KEY=value: fix or remove it (quote a value that has spaces, # or quotes)."
    ]


def test_an_unreadable_env_file_line_is_a_config_problem_with_the_others(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"OPENAI_API_KEY {OPENAI_KEY}\nLOG_LEVEL=loud\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config({"DISCORD_TOKEN": TOKEN}, env_file=env_file)
    problems = caught.value.problems
    assert f"{env_file} line 1 is not KEY=value" in problems[0]
    assert any(p.startswith("OPENAI_API_KEY is not set") for p in problems)
    assert any(p.startswith("LOG_LEVEL must be one of") for p in problems)
    assert OPENAI_KEY not in str(caught.value)


def test_an_env_file_that_is_not_utf8_is_one_problem(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_bytes(b"OPENAI_API_KEY=caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_config(base_env(), env_file=env_file)
    assert caught.value.problems == [f"{env_file} is not UTF-8 text: save it as UTF-8."]


def test_persona_file_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(base_env(PERSONA_FILE=str(missing)), env_file=None)
    assert caught.value.problems == [f"PERSONA_FILE {str(missing)!r} does not exist or is not a file."]


def test_secrets_never_appear_in_repr_str_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    config = load_config(base_env(), env_file=None)
    for text in (repr(config), str(config), repr(config.realtime), f"{config.discord_token}"):
        assert TOKEN not in text and OPENAI_KEY not in text
        assert "***" in text
    with pytest.raises(ConfigError) as caught:
        load_config(base_env(DEV_GUILD_ID="guild", REALTIME_PROVIDER="custom"), env_file=None)
    message = str(caught.value) + repr(caught.value)
    assert TOKEN not in message and OPENAI_KEY not in message
    with caplog.at_level(logging.DEBUG):
        load_config(base_env(), env_file=None)
    assert TOKEN not in caplog.text and OPENAI_KEY not in caplog.text


def test_shards_this_host_runs_of_one_count() -> None:
    assert load_config(base_env(SHARD_ID="1", SHARD_COUNT="2"), env_file=None).shard_ids == (1,)
    config = load_config(base_env(SHARD_IDS="0-3, 8", SHARD_COUNT="10"), env_file=None)
    assert (config.shard_ids, config.shard_count) == ((0, 1, 2, 3, 8), 10)
    assert load_config(base_env(SHARD_COUNT="3"), env_file=None).shard_ids == (0, 1, 2)
    none = load_config(base_env(), env_file=None)
    assert (none.shard_ids, none.shard_count) == (None, None)
    bad_sets: list[dict[str, str]] = [
        {"SHARD_ID": "0"},
        {"SHARD_IDS": "0-1"},
        {"SHARD_ID": "2", "SHARD_COUNT": "2"},
        {"SHARD_IDS": "1-4", "SHARD_COUNT": "4"},
        {"SHARD_IDS": "3-1", "SHARD_COUNT": "4"},
        {"SHARD_IDS": "0,0", "SHARD_COUNT": "4"},
        {"SHARD_IDS": "0", "SHARD_ID": "0", "SHARD_COUNT": "4"},
        {"SHARD_ID": "a", "SHARD_COUNT": "2"},
        {"SHARD_COUNT": "0"},
    ]
    for bad in bad_sets:
        with pytest.raises(ConfigError, match="SHARD_") as caught:
            load_config(base_env(**bad), env_file=None)
        assert len(caught.value.problems) == 1, (bad, caught.value.problems)


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e400", "٣", "²", "1_0"])
@pytest.mark.parametrize("key", ["IDLE_LEAVE_S", "MAX_SESSION_MIN", "DAILY_BUDGET_MIN", "SHUTDOWN_DEADLINE_S"])
def test_non_finite_and_non_ascii_numbers_are_refused(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(base_env(**{key: value}), env_file=None)
    assert caught.value.problems == [f"{key} must be a plain number such as 60 or 2.5 (got {value!r})."]


@pytest.mark.parametrize("value", ["²", "٣", "1.5", "-1", "1e3", "nan"])
@pytest.mark.parametrize("key", ["DEV_GUILD_ID", "SHARD_ID", "SHARD_COUNT", "METRICS_PORT", "MAX_SESSIONS"])
def test_whole_number_settings_take_ascii_digits_only(key: str, value: str) -> None:
    env = base_env(**{key: value})
    if key == "SHARD_ID":
        env["SHARD_COUNT"] = "4"
    with pytest.raises(ConfigError) as caught:
        load_config(env, env_file=None)
    assert len(caught.value.problems) == 1 and caught.value.problems[0].startswith(key)
    assert "digits 0-9" in caught.value.problems[0] or "shard numbers" in caught.value.problems[0]


def test_operating_settings() -> None:
    config = load_config(base_env(), env_file=None)
    assert (config.metrics_port, config.log_format, config.max_sessions, config.shutdown_deadline_s) == (
        None, "text", 0, 10.0,
    )  # fmt: skip
    assert config.discord_api_url is None and config.discord_gateway_url is None
    config = load_config(
        base_env(
            METRICS_PORT="9100", LOG_FORMAT="JSON", MAX_SESSIONS="75", SHUTDOWN_DEADLINE_S="4.5",
            DISCORD_API_URL="http://127.0.0.1:8080/api/v10", DISCORD_GATEWAY_URL="ws://127.0.0.1:8080/gateway",
        ),
        env_file=None,
    )  # fmt: skip
    assert (config.metrics_port, config.log_format, config.max_sessions, config.shutdown_deadline_s) == (
        9100, "json", 75, 4.5,
    )  # fmt: skip
    assert config.discord_api_url == "http://127.0.0.1:8080/api/v10"
    with pytest.raises(ConfigError) as caught:
        load_config(
            base_env(METRICS_PORT="70000", LOG_FORMAT="xml", SHUTDOWN_DEADLINE_S="0", DISCORD_GATEWAY_URL="http://x"),
            env_file=None,
        )
    assert [p.split(" ")[0] for p in caught.value.problems] == [
        "METRICS_PORT", "LOG_FORMAT", "SHUTDOWN_DEADLINE_S", "DISCORD_GATEWAY_URL",
    ]  # fmt: skip


def test_the_example_env_file_reads_without_problems() -> None:
    values, problems = read_env_file(Path(__file__).resolve().parent.parent / ".env.example")
    assert problems == []
    assert {"DISCORD_TOKEN", "OPENAI_API_KEY", "REALTIME_PROVIDER", "SHARD_COUNT"} <= values.keys()
    assert values["REALTIME_PROVIDER"] == "openai" and values["DISCORD_TOKEN"] == ""


def test_database_url_is_a_secret_and_must_be_postgresql() -> None:
    assert load_config(base_env(), env_file=None).database_url is None  # SQLite in DATA_DIR
    url = "postgresql://bot:p%40ss-word-123@db.example:5432/voicebot"
    config = load_config(base_env(DATABASE_URL=url), env_file=None)
    assert config.database_url is not None and config.database_url.reveal() == url
    assert "p%40ss" not in repr(config) and "p@ss-word-123" not in repr(config)
    revealed = [s.reveal() for s in config.secrets()]
    assert url in revealed and "p@ss-word-123" in revealed  # the bare password is redacted from logs too
    with pytest.raises(ConfigError, match="DATABASE_URL must be a PostgreSQL URL") as caught:
        load_config(base_env(DATABASE_URL="mysql://bot:hunter2-secret@db/voicebot"), env_file=None)
    assert "hunter2-secret" not in str(caught.value)


def test_the_voice_encoding_is_24k_mono_unless_48k_stereo_is_asked_for() -> None:
    assert load_config(base_env(), env_file=None).voice_encoding == "24k-mono"
    assert load_config(base_env(VOICE_ENCODING="48K-Stereo"), env_file=None).voice_encoding == "48k-stereo"
    with pytest.raises(ConfigError) as caught:
        load_config(base_env(VOICE_ENCODING="96k"), env_file=None)
    assert caught.value.problems == ["VOICE_ENCODING must be one of 24k-mono, 48k-stereo (got '96k')."]
