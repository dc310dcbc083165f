"""Hook lists of the assets services: other apps register in their `AppConfig.ready()`."""

from __future__ import annotations

from assets.models import ReadingBatch
from registry.hooks import Hook

# Called with each batch that becomes accepted, inside its transaction (other apps register
# here, e.g. to start automatic issuance with `delay_on_commit`); a hook must not write.
READINGS_ACCEPTED_HOOKS = Hook("assets.readings_accepted")  # Callable[[ReadingBatch], None]


def readings_accepted_hooks_run(batch: ReadingBatch) -> None:
    """Call every hook registered for accepted batches, in registration order."""
    # Read through the package when called: `assets.services.READINGS_ACCEPTED_HOOKS` is the
    # documented name, so a list put there (tests swap it) is the one that runs.
    from assets import services

    for hook in services.READINGS_ACCEPTED_HOOKS:
        hook(batch)
