"""The container's providers the routes ask for: each name declared once, with its type.

Routes reach services through ``@inject`` and a ``Provide`` marker. The marker names a
provider by string because this adapter must not import the container (``bootstrap``
depends on ``adapters.http``, never the other way). So every marker is made by ``provide``,
which records the name and the type the route expects in ``PROVIDED``; the composition root
checks that table against its container when it wires the routes
(``bootstrap.container.wire_routes``), so a misspelt name or a wrong type fails at start-up
and in ``tests/bootstrap/test_wiring.py``, not on the first request that needs it.
"""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide
from fastapi import Depends

PROVIDED: dict[str, object] = {}
"""Provider name -> the type (a class or a ``Callable[...]`` alias) routes expect of it."""


def provide(name: str, kind: object) -> Any:
    """The ``Provide`` marker for the container's provider ``name``, which must make a ``kind``."""
    known = PROVIDED.setdefault(name, kind)
    if known != kind:
        raise TypeError(f"provider {name!r} is declared as both {known!r} and {kind!r}")
    return Provide[name]


def on_loop(marker: Any) -> Any:
    """``Depends`` on a coroutine that answers ``marker``: FastAPI awaits it on the event loop.

    ``Depends(Provide[...])`` makes the marker itself the dependency, a plain callable, which
    FastAPI runs in the thread pool: one more round trip between the event loop and a worker
    thread on every request, only to get the marker back, which ``@inject`` then replaces
    with the container's service. The marker also stays in the ``Annotated`` metadata, after
    this ``Depends``, which is where ``@inject`` finds it (FastAPI ignores it there).
    """

    async def provided() -> Any:
        return marker

    return Depends(provided)
