"""URL map: the browser UI, the APIs, OAuth, short links and event capture."""

from django.conf import settings
from django.urls import include, path, re_path
from django.views.static import serve as serve_file

from weituan.api import api_not_found, api_v1, api_v2

handler400 = "weituan.api.bad_request"
handler500 = "weituan.api.server_error"

urlpatterns = [
    path("api/v1/", api_v1.urls),
    path("api/v2/", api_v2.urls),
    re_path(r"^api/v[12]/", api_not_found),  # no endpoint: the API's JSON 404
    path("", include("weituan.accounts.urls")),
    path("", include("weituan.tracking.urls")),
    path("", include("weituan.deals.urls")),
    path("", include("weituan.microblog.urls")),
    path("", include("weituan.web.urls")),
    # Uploaded media: served by the app in the embedded mode; a proxy may take over when scaled out.
    re_path(r"^media/(?P<path>.*)$", serve_file, {"document_root": settings.MEDIA_ROOT}),
]
