from contracts.api import views
from registry.api.routers import Router

router = Router()
router.register("contracts/keys", views.OrganisationKeyViewSet, basename="contract-key")
router.register("contracts/executions", views.ExecutionViewSet, basename="contract-execution")
router.register("contracts/obligations", views.ObligationViewSet, basename="contract-obligation")
router.register("contracts", views.ContractViewSet, basename="contract")

urlpatterns = router.urls
