from rest_framework.routers import SimpleRouter

from contracts.api import views

router = SimpleRouter()
router.register("contracts/keys", views.OrganisationKeyViewSet, basename="contract-key")
router.register("contracts/executions", views.ExecutionViewSet, basename="contract-execution")
router.register("contracts", views.ContractViewSet, basename="contract")

urlpatterns = router.urls
