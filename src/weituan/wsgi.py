"""The WSGI application: `weituan serve --server granian-wsgi` runs the sync stack on threads without an event loop."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "weituan.settings")

application = get_wsgi_application()

# GET /api/v1/timelines/home with a bearer token is answered in front of Django (see
# weituan.mastodon.api_timelines_fast).
from weituan.mastodon.api_timelines_fast import with_home_timeline_wsgi  # noqa: E402

application = with_home_timeline_wsgi(application)
