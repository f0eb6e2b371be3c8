"""Error classes: by the status the client got and whether an upstream attempt gave it, never by dialect."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from addons.metrics.classify import CLASSES, CLIENT_CLOSED, error_class


@pytest.mark.parametrize(
    ("status", "upstream", "attempt_error", "expected"),
    [
        (200, False, None, None),
        (204, False, None, None),
        (200, True, None, None),
        (400, False, None, "client_error"),  # a malformed body
        (405, False, None, "client_error"),
        (411, False, None, "client_error"),
        (401, False, None, "unauthorised"),  # the proxy's access token
        (403, False, None, "unauthorised"),  # an Origin or Host refused
        (407, False, None, "unauthorised"),  # proxy credentials
        (404, False, None, "not_found"),
        (404, True, "model not found", "not_found"),
        (413, False, None, "too_large"),
        (429, False, None, "rate_limited"),  # every key cooling down, no provider called
        (429, True, "rate limited", "rate_limited"),
        (402, False, None, "budget_exceeded"),  # the proxy's only own 402
        (402, True, "out of credits", "upstream_error"),  # the provider's
        (401, True, "invalid key", "upstream_error"),  # the provider refused our key, not the client's
        (400, True, "bad parameter", "client_error"),  # the provider found the request itself wrong
        (503, False, None, "unavailable"),  # no key configured, a shared store away
        (503, True, "overloaded", "upstream_error"),
        (504, True, "upstream_timeout", "upstream_error"),
        (408, True, None, "upstream_error"),
        (502, True, "upstream_bad_response", "upstream_bad_response"),
        (502, True, "empty_answer", "upstream_bad_response"),
        (502, True, "upstream_error", "upstream_error"),
        (500, False, None, "internal"),
        (500, True, "server error", "upstream_error"),
        (CLIENT_CLOSED, False, None, "client_closed"),
        (CLIENT_CLOSED, True, None, "client_closed"),
    ],
)
def test_error_class(status: int, upstream: bool, attempt_error: str | None, expected: str | None) -> None:
    assert error_class(status, upstream, attempt_error) == expected


@given(st.integers(100, 599), st.booleans(), st.one_of(st.none(), st.text(max_size=30)))
def test_every_error_status_has_exactly_one_known_class(status: int, upstream: bool, err: str | None) -> None:
    kind = error_class(status, upstream, err)
    assert (kind is None) == (status < 400)
    assert kind is None or kind in CLASSES
