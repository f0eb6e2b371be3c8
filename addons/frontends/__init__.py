"""Client dialects: which endpoints exist, how a body becomes the internal chat request, and how an
outcome goes back to the client in the client's own shape (JSON, SSE, errors)."""
