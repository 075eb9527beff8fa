"""The ASGI application served by `weituan serve`."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "weituan.settings")

application = get_asgi_application()
