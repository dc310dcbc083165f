"""The hook through which an agent learns its organisation's battery charge.

`BATTERY_CHARGE_LOOKUPS` (`market.battery_charge_lookups`) is defined when market/models.py
is imported (through market/agent_models.py, before any app's `ready()`), so the contracts
app, which keeps batteries' state of charge and comes before the market in INSTALLED_APPS,
registers into it by name.
Each lookup takes `organisation_id` and `grid_area_id` and returns the Wh its storage
devices can deliver, or None when it knows no storage of the organisation.
"""

from registry.hooks import Hook

BATTERY_CHARGE_LOOKUPS = Hook("market.battery_charge_lookups")
