"""Every write about certificates: one function per use case, one transaction, one event.

One module per use case; import from here (`from certificates import services`):

- `issuance`: certificate_issue, certificate_auto_issue
- `issuance_request`: issuance_request_create / _approve / _reject
- `cut`: certificate_transfer_cut (bundles cut for several receivers at once)
- `transfer`: certificate_transfer, certificate_transfer_batch, certificate_transfer_accept /
  _reject / _withdraw, transfer_policy_set
- `reservation`: certificate_units_reserve / _release / _deliver (units other apps hold;
  the caller appends the event, see its docstring)
- `retirement`: certificate_retire, certificate_retire_periods, certificate_expire_due,
  certificate_withdraw
- `storing`: certificate_units_store / certificate_storage_issue (a battery's charge
  cancelled, its discharge issued as storage certificates; the caller appends the event)
- `withdrawal`: certificate_withdraw_for_device (a device's certificates for a period,
  with a dry run)
- `common`: the checks and split machinery they share, and the account-close guard

The lock order is `certificates.locks`'s docstring; hand-written SQL is
`certificates.storage`. No global ledger row is locked: `ledger_append` only queues the
event; the ledger's integrator numbers it after commit.
"""

from certificates.services.common import (
    ISSUED_HOOKS,
    LIVE,
    MAX_BATCH_ITEMS,
    MAX_SAFE_WH,
    Actor,
    Mandate,
    account_close_guard,
)
from certificates.services.cut import certificate_transfer_cut
from certificates.services.issuance import (
    MAX_REQUEST_DAYS,
    certificate_auto_issue,
    certificate_issue,
)
from certificates.services.issuance_request import (
    issuance_request_approve,
    issuance_request_create,
    issuance_request_reject,
)
from certificates.services.reservation import (
    UnitsChange,
    certificate_units_deliver,
    certificate_units_release,
    certificate_units_reserve,
)
from certificates.services.retirement import (
    EXPIRE_BATCH,
    certificate_expire_due,
    certificate_retire,
    certificate_retire_periods,
    certificate_withdraw,
)
from certificates.services.storing import (
    OriginPiece,
    StorageChanges,
    certificate_storage_issue,
    certificate_units_store,
)
from certificates.services.transfer import (
    certificate_transfer,
    certificate_transfer_accept,
    certificate_transfer_batch,
    certificate_transfer_reject,
    certificate_transfer_withdraw,
    transfer_policy_set,
)
from certificates.services.withdrawal import DeviceWithdrawal, certificate_withdraw_for_device

__all__ = [
    "EXPIRE_BATCH",
    "ISSUED_HOOKS",
    "LIVE",
    "MAX_BATCH_ITEMS",
    "MAX_REQUEST_DAYS",
    "MAX_SAFE_WH",
    "Actor",
    "DeviceWithdrawal",
    "Mandate",
    "OriginPiece",
    "StorageChanges",
    "UnitsChange",
    "account_close_guard",
    "certificate_auto_issue",
    "certificate_expire_due",
    "certificate_issue",
    "certificate_retire",
    "certificate_retire_periods",
    "certificate_storage_issue",
    "certificate_transfer",
    "certificate_transfer_accept",
    "certificate_transfer_batch",
    "certificate_transfer_cut",
    "certificate_transfer_reject",
    "certificate_transfer_withdraw",
    "certificate_units_deliver",
    "certificate_units_release",
    "certificate_units_reserve",
    "certificate_units_store",
    "certificate_withdraw",
    "certificate_withdraw_for_device",
    "issuance_request_approve",
    "issuance_request_create",
    "issuance_request_reject",
    "transfer_policy_set",
]
