"""Validation of client requests at the boundary. Unknown fields are kept and forwarded untouched."""

from __future__ import annotations

from typing import Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, with_config
from typing_extensions import TypedDict

from translators import json_codec

TOO_DEEP = "Request JSON is nested too deeply to process."


class RequestError(ValueError):
    """The client's request is unusable; `param` names the offending field when known."""

    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.param = param
        self.status = status


@with_config(ConfigDict(extra="ignore"))
class Message(TypedDict):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: NotRequired[str | list[dict[str, Any]] | None]


class ChatRequest(BaseModel):
    """The fields the proxy reads, checked; the request forwarded is the client's own dict, so unknown
    fields ride along untouched. Extras are ignored here (not copied) and messages are TypedDicts, not
    models: a large agent request validates several times faster (bench/README.md)."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(default="", max_length=512)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None  # read by the proxy (include_usage)

    @field_validator("stream", mode="before")
    @classmethod
    def _strict_bool(cls, v: Any) -> Any:
        if v is None:
            return False
        if not isinstance(v, bool):
            raise ValueError("must be true or false")
        return v


def decode_object(raw: bytes, what: str) -> dict[str, Any]:
    """A request body's JSON object, or RequestError saying why not; `what` names the request expected
    ("chat completion", "Messages", "Responses")."""
    if not raw.strip():
        raise RequestError(f"Request body is empty; expected a JSON {what} request.")
    try:
        body = json_codec.loads(raw)
    except (UnicodeDecodeError, json_codec.JSONDecodeError) as e:
        raise RequestError(f"Request body is not valid JSON: {e}") from None
    except RecursionError:
        raise RequestError(TOO_DEEP) from None
    if not isinstance(body, dict):
        raise RequestError("Request body must be a JSON object.")
    return body


def parse_chat_request(raw: bytes) -> dict[str, Any]:
    """Decode and validate; returns the plain dict (extra fields included) or raises RequestError."""
    body = decode_object(raw, "chat completion")
    try:
        ChatRequest.model_validate(body)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "missing":
            raise RequestError(f"Missing required parameter: '{loc}'.", param=loc) from None
        raise RequestError(f"Invalid value for '{loc}': {err['msg']}.", param=loc) from None
    return body
