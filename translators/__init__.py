"""Pure translation code: OpenAI wire format in and out. No mitmproxy imports here."""
