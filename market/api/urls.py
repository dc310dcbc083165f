from django.urls import path

from market.api import agents, views
from registry.api.routers import Router

router = Router()
router.register("market/markets", views.MarketViewSet, basename="market")
router.register("market/orders", views.OrderViewSet, basename="market-order")
router.register("market/clearings", views.SlotClearingViewSet, basename="market-clearing")
router.register("market/agents", agents.TradingAgentViewSet, basename="market-agent")
router.register("market/trades", views.TradeViewSet, basename="market-trade")
router.register(
    "market/settlement-accounts", views.SettlementAccountViewSet, basename="settlement-account"
)

urlpatterns = [
    path("market/deposits/", views.DepositView.as_view(), name="market-deposit"),
    path("market/withdrawals/", views.WithdrawalView.as_view(), name="market-withdrawal"),
    *router.urls,
]
