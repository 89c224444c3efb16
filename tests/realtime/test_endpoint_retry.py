"""URLs and headers per provider, the retry policy and the error tree (pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.config import RealtimeConfig
from bot.realtime.client_events import SessionSettings, session_update
from bot.realtime.endpoint import AZURE_MAX_SESSION_S, OPENAI_MAX_SESSION_S, endpoint_for
from bot.realtime.errors import ConnectionFailed, RejectedError, ServerError, handshake_error
from bot.realtime.retry import RetryPolicy, backoff_delay_s, renew_at_s, should_retry
from bot.secret import Secret
from tests.realtime.schema import schema_problems

KEY = Secret("sk-test-abcdef123456")


def test_openai_uses_bearer_auth_and_the_ga_dialect() -> None:
    endpoint = endpoint_for(RealtimeConfig(provider="openai", api_key=KEY))
    assert endpoint.url == "wss://api.openai.com/v1/realtime?model=gpt-realtime-1.5"
    assert endpoint.headers == {"Authorization": "Bearer sk-test-abcdef123456"}
    assert endpoint.dialect == "ga" and endpoint.max_session_s == OPENAI_MAX_SESSION_S
    assert "sk-test" not in repr(endpoint)


def test_azure_v1_and_preview() -> None:
    v1 = endpoint_for(
        RealtimeConfig(
            provider="azure", api_key=KEY, azure_endpoint="https://res.openai.azure.com", azure_deployment="my-rt"
        )
    )
    assert v1.url == "wss://res.openai.azure.com/openai/v1/realtime?model=my-rt"
    assert v1.headers == {"api-key": "sk-test-abcdef123456"} and v1.dialect == "ga"
    assert v1.max_session_s == AZURE_MAX_SESSION_S
    preview = endpoint_for(
        RealtimeConfig(
            provider="azure",
            api_key=KEY,
            azure_endpoint="https://res.openai.azure.com/",
            azure_deployment="my-rt",
            azure_api_version="2025-04-01-preview",
        )
    )
    assert preview.url == "wss://res.openai.azure.com/openai/realtime?api-version=2025-04-01-preview&deployment=my-rt"
    assert preview.dialect == "beta" and preview.describe() == "wss://res.openai.azure.com/openai/realtime"


def test_azure_preview_warns_once_a_non_preview_version_stays_ga_and_an_entra_token_is_a_bearer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    base = RealtimeConfig(
        provider="azure", api_key=KEY, azure_endpoint="https://res2.openai.azure.com", azure_deployment="rt"
    )
    preview = replace(base, azure_api_version="2024-12-17-preview")
    endpoint_for(preview)
    endpoint_for(preview)
    [warning] = [r.getMessage() for r in caplog.records if "preview Realtime protocol" in r.getMessage()]
    assert "deprecated since 2026-04-30" in warning
    dated = endpoint_for(replace(base, azure_api_version="2025-08-28"))
    assert dated.dialect == "ga" and dated.url == "wss://res2.openai.azure.com/openai/v1/realtime?model=rt"
    assert any("not a preview version" in r.getMessage() for r in caplog.records)
    entra = endpoint_for(replace(base, api_key=None, azure_ad_token=Secret("eyJ-entra-token")))
    assert entra.headers == {"Authorization": "Bearer eyJ-entra-token"} and entra.secrets() == ("eyJ-entra-token",)
    command = endpoint_for(replace(base, api_key=None, azure_ad_token_command="az account get-access-token"))
    assert command.headers == {} and command.token_command == "az account get-access-token"


def test_custom_servers_take_the_url_optional_key_and_beta_header() -> None:
    plain = endpoint_for(RealtimeConfig(provider="custom", url="ws://localhost:8080/rt"))
    assert plain.url == "ws://localhost:8080/rt?model=gpt-realtime-1.5" and plain.headers == {}
    beta = endpoint_for(RealtimeConfig(provider="custom", url="wss://x/rt?model=m", api_key=KEY, dialect="beta"))
    assert beta.url == "wss://x/rt?model=m"
    assert beta.headers == {"Authorization": "Bearer sk-test-abcdef123456", "OpenAI-Beta": "realtime=v1"}
    with pytest.raises(ValueError, match="REALTIME_URL"):
        endpoint_for(RealtimeConfig(provider="custom"))


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=8.0)
    assert [backoff_delay_s(n, policy, lambda: 1.0) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert [backoff_delay_s(n, policy, lambda: 0.0) for n in range(1, 4)] == [0.5, 1.0, 2.0]


def test_fatal_errors_stop_retrying_and_attempts_are_capped() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert should_retry(ConnectionFailed("drop"), 2, policy)
    assert not should_retry(ConnectionFailed("drop"), 3, policy)
    assert not should_retry(handshake_error(401), 1, RetryPolicy())
    assert not should_retry(ServerError("no quota", code="insufficient_quota"), 1, RetryPolicy())
    assert should_retry(ServerError("slow down", code="rate_limit_exceeded"), 1, RetryPolicy())


def test_handshake_statuses_map_to_the_error_tree() -> None:
    assert isinstance(handshake_error(401), RejectedError)
    assert handshake_error(404).code == "model_not_found"
    assert isinstance(handshake_error(429), ConnectionFailed) and handshake_error(503).retryable
    assert isinstance(handshake_error(400, "insufficient_quota"), RejectedError)


def test_renewal_comes_before_the_limit() -> None:
    policy = RetryPolicy(renew_margin_s=120.0)
    assert renew_at_s(100.0, 3600.0, policy) == 100.0 + 3480.0
    assert renew_at_s(0.0, 100.0, policy) == 50.0  # a tiny limit still leaves half of it


def test_the_schema_check_catches_a_wrong_dialect_and_bad_fields() -> None:
    settings = SessionSettings(instructions="x")
    assert schema_problems(session_update(settings, "ga"), "ga") == []
    assert schema_problems(session_update(settings, "beta"), "beta") == []
    assert schema_problems(session_update(settings, "beta"), "ga") != []  # beta's flat fields are not GA
    assert schema_problems({"type": "conversation.item.truncate", "item_id": "i", "content_index": 0}, "ga") != []


def test_close_codes_4xxx_and_1008_are_fatal_others_retryable() -> None:
    from bot.realtime.errors import close_error

    assert not close_error(4001, "invalid key").retryable and not close_error(1008, "").retryable
    assert not close_error(4999, "").retryable
    assert close_error(1011, "internal").retryable and close_error(1006, "").retryable
    assert close_error(None, "").retryable and close_error(5000, "").retryable


def test_the_default_models_are_not_scheduled_for_shutdown_in_the_openai_sdk() -> None:
    """The SDK's docstrings list the deprecated values; the defaults must be literals that are not among them."""
    import inspect

    from openai.types.realtime import audio_transcription_param, realtime_session_create_request_param

    from bot.config import DEFAULT_MODEL, DEFAULT_TRANSCRIPTION_MODEL

    for module, default in (
        (realtime_session_create_request_param, DEFAULT_MODEL),
        (audio_transcription_param, DEFAULT_TRANSCRIPTION_MODEL),
    ):
        source = inspect.getsource(module)
        assert f'"{default}",' in source  # one of the SDK's model literals
        deprecated = source[source.index("Deprecated values:") :].split('"""')[0]
        assert f'"{default}"' not in deprecated
        assert "Announced shutdown date" in deprecated  # the check reads the list it means to
