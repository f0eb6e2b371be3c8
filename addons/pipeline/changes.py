"""The one place a message's change set reaches the stores."""

from __future__ import annotations

import logging

from addons.conversation.changeset import ChangeSet
from addons.security.redaction import Redactor
from addons.stores.base import Stores

log = logging.getLogger(__name__)


async def apply(stores: Stores, session_id: str, changes: ChangeSet, redactor: Redactor) -> None:
    """Session fields to the session store; settings and routes for every session to the config store
    (which saves them), with a warning naming the session that changed them."""
    if changes.session:
        await stores.sessions.update(session_id, changes.session)
    if not changes.changes_global:
        return
    await stores.config.put(changes.on_runtime(await stores.config.get()))
    if changes.global_changes:
        # Loud on purpose: a prompt injection that changes everyone's settings must leave a trace.
        log.warning(
            "session %r changed settings for every session: %s",
            session_id,
            redactor.redact("; ".join(changes.global_changes)),
        )
