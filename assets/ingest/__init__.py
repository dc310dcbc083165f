"""Validation of a batch of readings, row by row, in two phases.

Phase 1 (`ReadingIngest.add`, no transaction, no locks): parse each raw row, look up its
meter and device once per serial, check everything a row can show on its own (times,
alignment, future, meter window, device status, signature present and well formed) and
hand signature checks to a thread pool (PyNaCl releases the GIL, so verification runs on
every core while parsing, and then phase 2 and the insert, continue);
`wait_for_signatures` collects the verdicts.

Phase 2 (`ReadingIngest.resolve`, inside the writing transaction, after the devices and
meters are locked): compare with what is stored (one range query per device over accepted
and held readings), turn counters into intervals from the meter's locked counter state,
find duplicates and overlaps inside the batch, and flag rows for review.

Every row keeps its number from the upload, so errors point at the row the user sent.

Modules, in the order a row meets them:

- `parsing`: energy as whole Wh, times as UTC instants (cached per distinct text);
- `meters`: meter resolution (serial, permission, one organisation) and key look-up,
  and the re-check of status and keys once the rows are locked;
- `signatures`: signature decoding and the verification pool;
- `review`: the flags that hold a batch for review (over capacity, backdated);
- `resolve`: phase 2, against stored readings and the rest of the batch;
- `records`: the row error, entry and outcome types they pass along;
- `batch`: `ReadingIngest`, which runs one submission through them.

Storing the outcome, holding a batch and the accepted-batch hooks are the services' part
(`assets.services.readings`, `assets.services.reviews`; SQL in `assets.storage`).
"""

from assets.ingest.batch import ReadingIngest
from assets.ingest.meters import MAX_METERS
from assets.ingest.records import (
    CONFLICT_CODES,
    UTC,
    DeviceInfo,
    Entry,
    MeterInfo,
    Outcome,
    RowError,
)
from assets.ingest.review import REVIEW_MESSAGES
from assets.ingest.signatures import VERIFY_CHUNK, verify_many

__all__ = [
    "CONFLICT_CODES",
    "MAX_METERS",
    "REVIEW_MESSAGES",
    "UTC",
    "VERIFY_CHUNK",
    "DeviceInfo",
    "Entry",
    "MeterInfo",
    "Outcome",
    "ReadingIngest",
    "RowError",
    "verify_many",
]
