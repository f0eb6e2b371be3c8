"""All state the proxy keeps: sessions, cooldowns and rotation, runtime configuration and routes,
history. Constructed only by `addons/app.py`."""
