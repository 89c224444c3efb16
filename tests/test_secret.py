from __future__ import annotations

import io
import logging
import pickle

import pytest

from bot.secret import RedactingFilter, Secret, redact

VALUE = "sk-live-0123456789abcdef"


def test_secret_masks_every_rendering() -> None:
    secret = Secret(VALUE)
    assert secret.reveal() == VALUE
    for rendering in (
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        "%s" % secret,  # noqa: UP031 - %-style is what logging uses
        str([secret]),
    ):
        assert VALUE not in rendering
    assert bool(Secret("")) is False
    assert Secret(VALUE) == Secret(VALUE) and Secret(VALUE) != Secret("other")
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_redact_replaces_values_but_not_tiny_ones() -> None:
    assert redact(f"Authorization: Bearer {VALUE}", [Secret(VALUE)]) == "Authorization: Bearer ***"
    assert redact("a b c", ["a"]) == "a b c"


def test_redacting_filter_cleans_messages_args_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter([Secret(VALUE)]))
    logger = logging.getLogger("tests.secret")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("connecting with %s", VALUE)
        logger.warning(f"inline {VALUE}")
        try:
            raise RuntimeError(f"server said: bad key {VALUE}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert VALUE not in output
    assert output.count("***") == 3
    assert "RuntimeError: server said: bad key ***" in output
