"""Trading agents: software that trades for an organisation in an energy slot market.

The models are market/agent_models.py (delegations and their decisions) and the battery
hook market/agent_hooks.py, outside this package so that market/models.py imports no module
of it (no import cycle between the market's modules). Here: `forecast` and `decision`
(pure: what to trade in a slot), `selectors` (the readings history and the battery's
charge), `services` (delegate, update, revoke, run a slot: ordinary orders through
market.services.orders).
Rules: docs/market.md, "Trading agents".
"""
