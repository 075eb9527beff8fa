"""Static files served by WhiteNoise from a middleware that also runs on the ASGI event loop.

WhiteNoise's own middleware is sync-only, and one sync-only member makes Django's ASGI handler switch
every request to a worker thread and back around it, on top of the switch for the view. This one
answers the (rare) static file in a thread and passes everything else straight through, so the
stack stays async and a request costs a single switch, for its view.
"""

from inspect import iscoroutinefunction, markcoroutinefunction
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any = None) -> None:
        super().__init__(get_response)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._async_call(request)
        return super().__call__(request)

    async def _async_call(self, request: HttpRequest) -> Any:
        if self.autorefresh:
            static_file = await sync_to_async(self.find_file)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve)(static_file, request)
        return await self.get_response(request)
