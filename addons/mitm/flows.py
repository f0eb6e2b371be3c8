"""How a `Reply` lands on a flow, and what the flow shows of the request that really left."""

from __future__ import annotations

import time

from mitmproxy import http
from mitmproxy.net.http import status_codes

from addons.frontends.base import Reply
from addons.mitm import flowview
from addons.security.redaction import Redactor
from addons.upstream import UpstreamCall


def apply_complete(flow: http.HTTPFlow, reply: Reply) -> None:
    close = wants_close(flow)  # read before the shown request replaces the client's headers
    # A HEAD answer carries headers only (HTTP forbids a body; clients would misread the next response).
    body = b"" if flow.request.method == "HEAD" else reply.body
    fields = [(k.encode(), v.encode()) for k, v in reply.headers.items() if k.lower() != "content-length"]
    # What Response.make would build, without re-encoding the body (it has no content-encoding) or
    # looking headers up again: this runs for every answer that is not streamed.
    fields.append((b"content-length", b"%d" % len(reply.body)))
    if close:
        fields.append((b"connection", b"close"))
    now = time.time()
    reason = status_codes.RESPONSES.get(reply.status, "").encode()
    headers = http.Headers(fields)
    flow.response = http.Response(b"HTTP/1.1", reply.status, reason, headers, body, None, now, now)


def wants_close(flow: http.HTTPFlow) -> bool:
    """The client asked to close after this response: answering `Connection: close` makes mitmproxy close."""
    return "close" in flow.request.headers.get("connection", "").lower()


def show_upstream(flow: http.HTTPFlow, call: UpstreamCall, redactor: Redactor) -> None:
    """Make the flow show the request that really left the proxy: key masked, and the body redacted
    even when redaction is off (a prompt that was sent with a key is not saved or shown with it)."""

    def hidden(name: str, value: str) -> bool:
        return name.lower() in call.secret_headers or flowview.masks(name, value, redactor)

    req = flow.request
    req.method = call.method
    req.url = redactor.redact(call.url)
    body = redactor.redact_bytes(call.body)
    fields = [(k.encode(), (flowview.MASK if hidden(k, v) else v).encode()) for k, v in call.headers.items()]
    if not any(k.lower() == "content-length" for k, _ in call.headers.items()):
        fields.append((b"content-length", b"%d" % len(body)))  # as `content =` would add it
    req.headers = http.Headers(fields)
    req.raw_content = body  # sent without a content-encoding: nothing to encode


def show_client_request(flow: http.HTTPFlow, body: bytes, redactor: Redactor) -> None:
    req = flow.request
    view = flowview.client_request(req.method, req.pretty_url, req.headers, body, redactor)
    flow.metadata["llm_client_request"] = view
    # The flow itself is never forwarded as is: mask the client's credentials in what mitmweb shows
    # (the view has decided which, header by header).
    for name in {k for k, v in view["headers"] if v is flowview.MASK}:
        req.headers[name] = flowview.MASK
    path = req.path
    if (shown := flowview.shown_url(path, redactor)) is not path:
        req.path = shown


def show_record(flow: http.HTTPFlow, reply: Reply, redactor: Redactor) -> None:
    """Metadata and comment, redacted whatever the redaction setting says (which decides only what
    is sent upstream): a model name or a command argument may hold a key."""
    flow.metadata["llm"] = flowview.metadata(reply.record, redactor) if reply.record else {}
    flow.comment = redactor.redact(flowview.comment(reply.record))
