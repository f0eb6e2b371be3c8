"""One call in plain async Python, independent of mitmproxy: dispatch, chat, failover, streams,
the call record and the texts the proxy shows about itself."""
