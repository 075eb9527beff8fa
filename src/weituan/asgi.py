"""The ASGI application served by `weituan serve`."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "weituan.settings")

application = get_asgi_application()

# /s/<code> is answered in front of the middleware stack (see weituan.tracking.asgi).
from weituan.tracking.asgi import with_short_links  # noqa: E402  (needs the apps loaded)

application = with_short_links(application)

# GET /api/v1/timelines/home with a bearer token is answered in front of Django too (see
# weituan.mastodon.api_timelines_fast).
from weituan.mastodon.api_timelines_fast import with_home_timeline  # noqa: E402

application = with_home_timeline(application)
