from rest_framework.routers import DefaultRouter

from api.views import TrialViewSet

router = DefaultRouter()
router.register("trials", TrialViewSet, basename="trial")

urlpatterns = router.urls
