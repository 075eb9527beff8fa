"""The ASGI application served by `weituan serve`."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "weituan.settings")

application = get_asgi_application()

# The streaming API (server-sent event streams and the WebSocket) is served in front of Django, and other
# WebSocket connections refused there (see weituan.mastodon.api_streaming).
from weituan.mastodon.api_streaming import with_streaming  # noqa: E402

application = with_streaming(application)

# GET /api/v1/timelines/home with a bearer token is answered in front of Django too (see
# weituan.mastodon.api_timelines_fast).
from weituan.mastodon.api_timelines_fast import with_home_timeline  # noqa: E402

application = with_home_timeline(application)

# POST /api/v1/statuses with a bearer token too (see weituan.mastodon.api_statuses_fast).
from weituan.mastodon.api_statuses_fast import with_status_post  # noqa: E402

application = with_status_post(application)

# POST /api/v1/deals/{id}/orders with a bearer token too (see weituan.deals.api_orders_fast).
from weituan.deals.api_orders_fast import with_order_checkout  # noqa: E402

application = with_order_checkout(application)

# /s/<code> is answered in front of the middleware stack (see weituan.tracking.asgi). Wrapped last, so
# the busiest path of the site is matched first, before the other fast paths look at the request.
from weituan.tracking.asgi import with_short_links  # noqa: E402  (needs the apps loaded)

application = with_short_links(application)
