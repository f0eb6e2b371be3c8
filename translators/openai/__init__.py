"""OpenAI's chat wire format, the proxy's internal pivot: request validation, the payloads the proxy
builds itself (completions, chunks, errors, model lists), and reassembling a stream into a completion."""
