"""Keys and access: redaction of prompts, logs and flows, and the proxy's own access token."""
