"""The WSGI application: `weituan serve --server granian` runs the sync stack on threads without an event loop."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "weituan.settings")

application = get_wsgi_application()

# GET /api/v1/timelines/home with a bearer token is answered in front of Django (see
# weituan.mastodon.api_timelines_fast).
from weituan.mastodon.api_timelines_fast import with_home_timeline_wsgi  # noqa: E402

application = with_home_timeline_wsgi(application)

# POST /api/v1/statuses with a bearer token too (see weituan.mastodon.api_statuses_fast).
from weituan.mastodon.api_statuses_fast import with_status_post_wsgi  # noqa: E402

application = with_status_post_wsgi(application)

# POST /api/v1/deals/{id}/orders with a bearer token too (see weituan.deals.api_orders_fast).
from weituan.deals.api_orders_fast import with_order_checkout_wsgi  # noqa: E402

application = with_order_checkout_wsgi(application)
