"""The `consumers.distribution_owners` hook: apps that distribute some communities'
certificates themselves, so the periodic distribution leaves those communities alone.

Callable[[], Iterable[int]]: the ids of the communities another app distributes now
(the contracts app: communities under an active `community_sharing` contract). Defined
here, imported by `consumers.apps` at module level, so it exists before any app's
`ready()` (the contracts app comes first in INSTALLED_APPS and registers by name).
"""

from registry.hooks import Hook

DISTRIBUTION_OWNERS = Hook("consumers.distribution_owners")


def communities_distributed_elsewhere() -> set[int]:
    owned: set[int] = set()
    for owner in DISTRIBUTION_OWNERS:
        owned.update(owner())
    return owned
