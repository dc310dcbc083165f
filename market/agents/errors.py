"""Errors of the trading agent services: each has a code, an HTTP status and a detail."""

from registry.errors import Conflict, InvalidInput, NotFound


class AgentNotFound(NotFound):
    code = "market_agent_not_found"
    default_detail = "No such trading agent, or it is not visible to you."


class AgentRevoked(Conflict):
    code = "market_agent_revoked"
    default_detail = "The trading agent has been revoked; delegate a new one."


class AgentExists(Conflict):
    code = "market_agent_exists"
    default_detail = "The organisation has an active trading agent in this market already."


class AgentMarketUnsupported(Conflict):
    code = "market_agent_market_unsupported"
    default_detail = "Trading agents trade in energy slot markets only."


class InvalidAgentPreferences(InvalidInput):
    code = "invalid_agent_preferences"
    default_detail = "The agent's preferences are not valid."
