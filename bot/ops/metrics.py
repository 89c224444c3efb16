"""The process's Prometheus metrics, fed by one-line calls from the places that already know each figure.

Every metric lives in :data:`REGISTRY` (not prometheus-client's global one, so only these are served). Names follow
Prometheus conventions (``voicebot_…_total`` counters, ``…_seconds`` histograms). Label values are small fixed sets
(segments, reasons, error codes, model names, store operations): never a guild or user id, which would make one time
series per server. Feeding is thread-safe (the voice socket and sender threads count too) and never raises.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.realtime import outputs as out

__all__ = ["CONTENT_TYPE_LATEST", "REGISTRY", "exposition"]

REGISTRY = CollectorRegistry(auto_describe=True)
#: Turn segments run from tens of milliseconds (our playback path) to seconds (the model, the VAD's wait).
_TURN_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
_LAG_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_STORE_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

SESSIONS_ACTIVE = Gauge("voicebot_sessions_active", "Live voice sessions in this process.", registry=REGISTRY)
SESSIONS_REFUSED = Counter(
    "voicebot_sessions_refused_total", "/voice join refused because the process was full (MAX_SESSIONS).",
    registry=REGISTRY,
)  # fmt: skip
TURNS = Counter("voicebot_turns_total", "User turns transcribed.", registry=REGISTRY)
ANSWERS = Counter("voicebot_answers_total", "Turns the bot asked the model to answer.", registry=REGISTRY)
TURN_SEGMENT = Histogram(
    "voicebot_turn_segment_seconds",
    "Where a turn's time goes (the four segments /voice status shows): voiced_to_stopped (the VAD's wait), "
    "stopped_to_answer (the model), answer_to_played (the bot's playback path), voiced_to_played (the whole turn).",
    ["segment"],
    buckets=_TURN_BUCKETS_S,
    registry=REGISTRY,
)
REALTIME_RECONNECTS = Counter(
    "voicebot_realtime_reconnects_total", "Realtime connections dropped and being re-established.", registry=REGISTRY
)
REALTIME_ERRORS = Counter(
    "voicebot_realtime_errors_total", "Errors reported by the Realtime server or connection, by code.", ["code"],
    registry=REGISTRY,
)  # fmt: skip
REALTIME_TOKENS = Counter(
    "voicebot_realtime_tokens_total", "Realtime tokens used, by model and direction (input, output).",
    ["model", "direction"], registry=REGISTRY,
)  # fmt: skip
REALTIME_COST = Counter(
    "voicebot_realtime_cost_usd_total", "Estimated Realtime cost in US dollars, by model.", ["model"],
    registry=REGISTRY,
)  # fmt: skip
RECEIVE_PACKETS = Counter(
    "voicebot_voice_receive_packets_total",
    "Inbound voice packets by outcome: drops by their reason (runt, decrypt_failed, late, ...) and the decoded ones.",
    ["reason"],
    registry=REGISTRY,
)
PLAYBACK_UNDERRUNS = Counter(
    "voicebot_playback_underruns_total",
    "Times an answer's audio ran out before the answer did (the listener hears a gap).",
    registry=REGISTRY,
)
EVENT_LOOP_LAG = Histogram(
    "voicebot_event_loop_lag_seconds", "How late the event loop ran a timer (the loop was busy or blocked).",
    buckets=_LAG_BUCKETS_S, registry=REGISTRY,
)  # fmt: skip
STORE_OPERATION = Histogram(
    "voicebot_store_operation_seconds", "Time of each settings store operation, by operation.", ["operation"],
    buckets=_STORE_BUCKETS_S, registry=REGISTRY,
)  # fmt: skip


def exposition() -> bytes:
    """The text a Prometheus scrape of ``/metrics`` gets."""
    return generate_latest(REGISTRY)


# -- the one-line feeds -------------------------------------------------------------------------------------------


def turn_transcribed() -> None:
    TURNS.inc()


def answer_requested() -> None:
    ANSWERS.inc()


def turn_segment(segment: str, duration_ms: float) -> None:
    TURN_SEGMENT.labels(segment).observe(duration_ms / 1000.0)


def realtime_output(event: out.Output, model: str) -> None:
    """Count what a Realtime session reports: reconnects (as ``/voice status`` counts them), errors by code, and
    each answer's tokens and cost under ``model``."""
    match event:
        case out.SessionReady(reconnected=True):
            REALTIME_RECONNECTS.inc()
        case out.ErrorReported(code=code):
            REALTIME_ERRORS.labels(code or "none").inc()
        case out.UsageReport(part=part, part_cost_usd=cost_usd):
            REALTIME_TOKENS.labels(model, "input").inc(max(0, part.input_tokens))  # a counter refuses negatives
            REALTIME_TOKENS.labels(model, "output").inc(max(0, part.output_tokens))
            if cost_usd is not None:  # a model without prices adds tokens, never a made-up cost
                REALTIME_COST.labels(model).inc(max(0.0, cost_usd))


#: Each reason's counter, looked up once: this feed runs for every packet on the socket threads.
_receive_by_reason: dict[str, Counter] = {}


def voice_packet(reason: str, count: int = 1) -> None:
    child = _receive_by_reason.get(reason)
    if child is None:
        child = _receive_by_reason.setdefault(reason, RECEIVE_PACKETS.labels(reason))
    child.inc(max(0, count))


def playback_underrun() -> None:
    PLAYBACK_UNDERRUNS.inc()


def sessions_active(count: int) -> None:
    SESSIONS_ACTIVE.set(count)


def session_refused() -> None:
    SESSIONS_REFUSED.inc()


def event_loop_lag(lag_s: float) -> None:
    EVENT_LOOP_LAG.observe(max(0.0, lag_s))


def store_operation(operation: str, duration_s: float) -> None:
    STORE_OPERATION.labels(operation).observe(duration_s)
