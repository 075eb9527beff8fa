"""The WSGI application: `weituan serve --server granian-wsgi` runs the sync stack on threads without an event loop."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "weituan.settings")

application = get_wsgi_application()
