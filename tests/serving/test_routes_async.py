"""Nothing on a request's path goes through FastAPI's thread pool.

FastAPI runs a plain `def` endpoint or dependency in a worker thread, and the pool's threads exit after
10 s idle: the first burst after a quiet spell waited on `Thread.start` (0.3-1.4 s on a busy 2-core
machine, seen in `lorag bench serve`'s wave-by-wave TTFTs).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from serving import routes


def calls(dependant: Dependant) -> Iterator[object]:
    """The endpoint and every dependency under it."""
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from calls(sub)


def test_every_endpoint_and_dependency_is_async() -> None:
    checked = 0
    for router in (routes.router, routes.v1, routes.admin_router):
        for route in router.routes:
            assert isinstance(route, APIRoute)
            for call in calls(route.dependant):
                assert inspect.iscoroutinefunction(call), f"{route.path}: {call} runs in a thread"
                checked += 1
    assert checked > len(routes.v1.routes)  # dependencies were walked, not just endpoints
