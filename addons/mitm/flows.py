"""How a `Reply` lands on a flow, and what the flow shows of the request that really left."""

from __future__ import annotations

from mitmproxy import http

from addons.frontends.base import Reply
from addons.mitm import flowview
from addons.redaction import Redactor
from addons.upstream import UpstreamCall


def apply_complete(flow: http.HTTPFlow, reply: Reply) -> None:
    close = wants_close(flow)  # read before the shown request replaces the client's headers
    if reply.upstream:
        show_upstream(flow, reply.upstream)
    # A HEAD answer carries headers only (HTTP forbids a body; clients would misread the next response).
    body = b"" if flow.request.method == "HEAD" else reply.body
    flow.response = http.Response.make(reply.status, body, reply.headers)
    if close:
        flow.response.headers["connection"] = "close"


def wants_close(flow: http.HTTPFlow) -> bool:
    """The client asked to close after this response: answering `Connection: close` makes mitmproxy close."""
    return "close" in flow.request.headers.get("connection", "").lower()


def show_upstream(flow: http.HTTPFlow, call: UpstreamCall) -> None:
    """Make the flow show the request that really left the proxy, with its key masked."""
    flow.request.method = call.method
    flow.request.url = call.url
    flow.request.headers = http.Headers(
        [
            (k.encode(), (flowview.MASK if k.lower() in call.secret_headers else v).encode())
            for k, v in call.headers.items()
        ]
    )
    flow.request.content = call.body


def show_client_request(flow: http.HTTPFlow, body: bytes, redactor: Redactor) -> None:
    req = flow.request
    flow.metadata["llm_client_request"] = flowview.client_request(
        req.method, req.pretty_url, req.headers, body, redactor
    )
    # The flow itself is never forwarded as is: mask the client's credentials in what mitmweb shows.
    for name in flowview.SECRET_HEADERS & {k.lower() for k in req.headers}:
        req.headers[name] = flowview.MASK


def show_record(flow: http.HTTPFlow, reply: Reply) -> None:
    flow.metadata["llm"] = reply.record.as_metadata() if reply.record else {}
    flow.comment = flowview.comment(reply.record)
