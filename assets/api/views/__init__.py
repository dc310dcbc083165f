"""The assets API, one module per resource; the viewsets are re-exported for the URLs."""

from assets.api.views.devices import DeviceViewSet
from assets.api.views.grid_areas import EecsCodesView, GridAreaViewSet
from assets.api.views.meters import MeterViewSet
from assets.api.views.readings import ReadingBatchViewSet, ReadingViewSet

__all__ = [
    "DeviceViewSet",
    "EecsCodesView",
    "GridAreaViewSet",
    "MeterViewSet",
    "ReadingBatchViewSet",
    "ReadingViewSet",
]
