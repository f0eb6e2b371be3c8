"""How a `Reply` lands on a flow, and what the flow shows of the request that really left."""

from __future__ import annotations

from mitmproxy import http

from addons.frontends.base import Reply
from addons.mitm import flowview
from addons.security.redaction import Redactor
from addons.upstream import UpstreamCall


def apply_complete(flow: http.HTTPFlow, reply: Reply) -> None:
    close = wants_close(flow)  # read before the shown request replaces the client's headers
    # A HEAD answer carries headers only (HTTP forbids a body; clients would misread the next response).
    body = b"" if flow.request.method == "HEAD" else reply.body
    flow.response = http.Response.make(reply.status, body, reply.headers)
    if close:
        flow.response.headers["connection"] = "close"


def wants_close(flow: http.HTTPFlow) -> bool:
    """The client asked to close after this response: answering `Connection: close` makes mitmproxy close."""
    return "close" in flow.request.headers.get("connection", "").lower()


def show_upstream(flow: http.HTTPFlow, call: UpstreamCall, redactor: Redactor) -> None:
    """Make the flow show the request that really left the proxy: key masked, and the body redacted
    even when redaction is off (a prompt that was sent with a key is not saved or shown with it)."""

    def hidden(name: str, value: str) -> bool:
        return name.lower() in call.secret_headers or flowview.masks(name, value, redactor)

    flow.request.method = call.method
    flow.request.url = redactor.redact(call.url)
    flow.request.headers = http.Headers(
        [(k.encode(), (flowview.MASK if hidden(k, v) else v).encode()) for k, v in call.headers.items()]
    )
    flow.request.content = redactor.redact_bytes(call.body)


def show_client_request(flow: http.HTTPFlow, body: bytes, redactor: Redactor) -> None:
    req = flow.request
    flow.metadata["llm_client_request"] = flowview.client_request(
        req.method, req.pretty_url, req.headers, body, redactor
    )
    # The flow itself is never forwarded as is: mask the client's credentials in what mitmweb shows.
    for name in {k for k, v in req.headers.items() if flowview.masks(k, v, redactor)}:
        req.headers[name] = flowview.MASK
    req.path = flowview.shown_url(req.path, redactor)


def show_record(flow: http.HTTPFlow, reply: Reply, redactor: Redactor) -> None:
    """Metadata and comment, redacted whatever the redaction setting says (which decides only what
    is sent upstream): a model name or a command argument may hold a key."""
    flow.metadata["llm"] = redactor.redact_json(reply.record.as_metadata() if reply.record else {})
    flow.comment = redactor.redact(flowview.comment(reply.record))
