"""Storage balancing's writes: apply a day's plan (`contracts.kinds.storage.plan_day`)
inside the execution's transaction, through the certificates app's storage services.

Locks: the battery's `StorageState` row first (`contracts.locks.storage_state_lock`, taken
by the execution before it plans, so two executions of one battery queue and the second
plans on the first's result), then the certificates' own order (the charging bundles,
the battery's unit counter, the receiving account). No certificates writer waits for a
storage state row, so no cycle can form.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from accounts.models import Account
from certificates import services as certificates
from certificates.allocation import HOUR
from certificates.models import Bundle
from contracts.kinds.base import Plan
from contracts.kinds.storage import StoragePlan
from contracts.models import Contract, ContractExecution, StorageLayer, StorageState

SYSTEM = "system:contracts"


def _origin_of(bundle: Bundle, charged_at) -> dict[str, Any]:
    return {
        "origin_device_id": bundle.device_id,
        "technology_code": bundle.issuance.technology_code,
        "energy_source_code": bundle.issuance.energy_source_code,
        "period_start": bundle.period_start,
        "period_end": bundle.period_end,
        "charged_at": charged_at,
    }


def storage_apply(
    *,
    contract: Contract,
    plan: Plan,
    execution: ContractExecution,
    state: StorageState,
    mandate: certificates.Mandate,
) -> dict[str, Any]:
    """Cancel the charge's certificates, add and draw the layers, issue the storage
    certificates and move the state of charge; return the execution's result."""
    sp: StoragePlan = plan.storage
    now = timezone.now()
    changes = certificates.StorageChanges()
    moves = certificates.certificate_units_store(
        actor=SYSTEM, items=sp.store, mandate=mandate, now=now, into=changes
    )
    stored_id = {move.bundle.pk: move.moved.pk for move in moves}
    layers = [
        StorageLayer(
            device_id=contract.device_id,
            execution=execution,
            charged_at=new.charged_at,
            charged_wh=new.charged_wh,
            stored_wh=new.stored_wh,
            remaining_wh=new.remaining_wh,
            charged_bundle_id=None
            if new.source_bundle_id is None
            else stored_id[new.source_bundle_id],
        )
        for new in sp.new_layers
    ]
    StorageLayer.objects.bulk_create(layers)
    old = {
        layer.pk: layer
        for layer in StorageLayer.objects.filter(pk__in=list(sp.draws)).select_related(
            "charged_bundle__issuance"
        )
    }
    for pk, taken in sorted(sp.draws.items()):
        old[pk].remaining_wh -= taken
    StorageLayer.objects.bulk_update(list(old.values()), ["remaining_wh"])
    new_bundles = {
        b.pk: b
        for b in Bundle.objects.filter(pk__in=list(stored_id.values())).select_related("issuance")
    }
    periods = []
    for hour, drawn in sp.issue:
        pieces = []
        for wh, (age, key) in drawn:
            layer = old[key] if age == "old" else layers[key]
            bundle = layer.charged_bundle if age == "old" else new_bundles[layer.charged_bundle_id]
            pieces.append(
                certificates.OriginPiece(
                    volume_wh=wh,
                    charged_bundle_id=bundle.pk,
                    **_origin_of(bundle, layer.charged_at),
                )
            )
        periods.append((hour, hour + HOUR, pieces))
    storage_account = Account.objects.get(number=contract.terms["storage_account"])
    certificates.certificate_storage_issue(
        actor=SYSTEM,
        device_id=contract.device_id,
        account_id=storage_account.pk,
        periods=periods,
        efficiency_ppm=contract.terms["efficiency_ppm"],
        reading_ids=sp.reading_ids,
        now=now,
        into=changes,
    )
    state.soc_wh = sp.soc_end
    state.capacity_wh = contract.terms["capacity_wh"]
    state.through = sp.end
    state.updated_at = now
    state.save(update_fields=["soc_wh", "capacity_wh", "through", "updated_at"])
    plan.subjects += [("device", contract.device_id), *changes.subjects]
    result = dict(plan.summary)
    if changes.issuance is not None:
        result["storage_issuance_id"] = changes.issuance.pk
    result["units"] = changes.data()
    return result
