"""Which of a small fixed set of error classes a finished request falls in.

Decided by the status the client got and whether an upstream attempt gave it, never by the error body:
front-ends reshape errors (an Anthropic error has no `code`), and a class must not depend on the
client's dialect."""

from __future__ import annotations

CLIENT_CLOSED = 499  # nginx's status for a client that left before its answer ended

CLASSES = (
    "client_error",  # the request itself: malformed, wrong method, unknown parameter, ...
    "unauthorised",  # the proxy's access token missing or wrong, an Origin or Host refused
    "not_found",  # an unknown model, path or kept response
    "too_large",  # a request body over the limit
    "rate_limited",  # every key rate limited or cooling down
    "budget_exceeded",  # a session or project budget refused the request before any provider was called
    "unavailable",  # the proxy cannot serve: no key configured for the backend, or a shared store away
    "upstream_error",  # the provider failed (5xx, timeout, its own key refused, out of credits)
    "upstream_bad_response",  # the provider answered garbage or an empty answer
    "stream_broken",  # a committed stream ended with an error event (too late to fail over)
    "client_closed",  # the client hung up before the answer ended
    "internal",  # a bug of the proxy's own (the log has the traceback)
)
# What an attempt that answered garbage logs as its error (pipeline/failover.py).
BAD_RESPONSE = frozenset({"upstream_bad_response", "empty_answer"})
# Statuses a provider gives for its own trouble, not the client's request.
_UPSTREAM_TROUBLE = frozenset({401, 402, 403, 408})
# The same class whoever gave the status.
_BY_STATUS = {429: "rate_limited", 413: "too_large", 404: "not_found"}


def error_class(status: int, upstream: bool = False, attempt_error: str | None = None) -> str | None:
    """The class of a reply the client got (None: no error). `upstream`: an upstream attempt gave it;
    `attempt_error`: that attempt's logged error code."""
    if status < 400:
        return None
    if status == CLIENT_CLOSED:
        return "client_closed"
    if upstream and attempt_error in BAD_RESPONSE:
        return "upstream_bad_response"
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if upstream:
        return "upstream_error" if status >= 500 or status in _UPSTREAM_TROUBLE else "client_error"
    if status in (401, 403, 407):
        return "unauthorised"
    if status == 402:  # the proxy's only own 402
        return "budget_exceeded"
    if status == 503:
        return "unavailable"
    return "internal" if status >= 500 else "client_error"
