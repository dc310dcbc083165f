"""Every write about grid areas, devices, meters and readings: one function per use case.

The services live in one module per use case and are re-exported here, so callers import
them from `assets.services`:

- `grid_areas`: grid areas (bidding zones) and their policies;
- `devices`: device registration, edits and policy; `owners`: co-owners and shares;
  `device_lifecycle`: submit, approve, reject, activate, suspend, reinstate, decommission;
- `meters`: meters and their keys (register, rotate, counter reset, replace, remove);
- `readings`: reading batches (`readings_submit`) and `readings_mark_issued`;
- `reviews`: held batches accepted or rejected by the issuing body;
- `hooks`: `READINGS_ACCEPTED_HOOKS`, which other apps register into.

Locking policy: a service locks the device before its meters, each in primary-key order,
with the helpers of `assets.locks` (which states the app's whole lock order), so device
transitions, meter changes and reading batches of one device serialise and never
deadlock. Reading batches are parsed before the transaction (CPU work, no locks held)
while signatures are verified on a thread pool (`assets.ingest`); the store-dependent
checks, the insert (`assets.storage`) and the event run inside it, and the last signature
verdicts are awaited before it commits.
"""

from assets.services.common import MAX_SAFE_INTEGER
from assets.services.device_lifecycle import (
    DEVICE_TRANSITIONS,
    Transition,
    device_activate,
    device_approve,
    device_decommission,
    device_reinstate,
    device_reject,
    device_submit,
    device_suspend,
    device_transition,
)
from assets.services.devices import (
    DEVICE_EDITABLE,
    DEVICE_FIELDS,
    POLICY_FIELDS,
    device_policy_set,
    device_problems,
    device_register,
    device_update,
)
from assets.services.grid_areas import (
    GRID_AREA_EDITABLE,
    grid_area_create,
    grid_area_problems,
    grid_area_update,
)
from assets.services.hooks import READINGS_ACCEPTED_HOOKS
from assets.services.meters import (
    meter_counter_reset,
    meter_key_rotate,
    meter_register,
    meter_remove,
    meter_replace,
)
from assets.services.onboarding import Onboarding, devices_onboard
from assets.services.owners import MAX_OWNERS, OwnerShare, device_owners_set
from assets.services.readings import ReadingSubmission, readings_mark_issued, readings_submit
from assets.services.reviews import reading_batch_accept, reading_batch_reject

__all__ = [
    "DEVICE_EDITABLE",
    "DEVICE_FIELDS",
    "DEVICE_TRANSITIONS",
    "GRID_AREA_EDITABLE",
    "MAX_OWNERS",
    "MAX_SAFE_INTEGER",
    "POLICY_FIELDS",
    "READINGS_ACCEPTED_HOOKS",
    "Onboarding",
    "OwnerShare",
    "ReadingSubmission",
    "Transition",
    "device_activate",
    "device_approve",
    "device_decommission",
    "device_owners_set",
    "device_policy_set",
    "device_problems",
    "device_register",
    "device_reinstate",
    "device_reject",
    "device_submit",
    "device_suspend",
    "device_transition",
    "device_update",
    "devices_onboard",
    "grid_area_create",
    "grid_area_problems",
    "grid_area_update",
    "meter_counter_reset",
    "meter_key_rotate",
    "meter_register",
    "meter_remove",
    "meter_replace",
    "reading_batch_accept",
    "reading_batch_reject",
    "readings_mark_issued",
    "readings_submit",
]
