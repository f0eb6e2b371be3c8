"""What knows mitmproxy flows: how a reply lands on a flow, the stream relay, client hang-ups, what a
flow shows, and which addresses may listen."""
