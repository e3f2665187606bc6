"""How one method serves both clients: a plan read on a sync or an async handle.

A method marked ``@operation`` builds a plan (see ``_core``); read on a ``SyncSide`` handle it
runs the plan and returns its result, read on an ``AsyncSide`` handle it is a coroutine
function with the same parameters. A ``@paged`` method returns a ``Pager`` (the plan of the
page at a cursor) and becomes an iterator (sync) or an async iterator (async) over every
item, following ``next_cursor``. The overloads of ``__get__`` give each side its exact types.
"""

from __future__ import annotations

import functools
import types
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeAlias, TypeVar, overload

from stacksdb_client._core import Plan
from stacksdb_client.models import Page

P = ParamSpec("P")
T = TypeVar("T")

Pager: TypeAlias = Callable[[str | None], Plan[Page[T]]]
"""The plan that fetches the page at a cursor (None: the first page)."""


class SyncSide(ABC):
    """A handle whose methods block: it runs a plan with httpx.Client and time.sleep."""

    @abstractmethod
    def _run(self, plan: Plan[T]) -> T: ...


class AsyncSide(ABC):
    """A handle whose methods are coroutines: httpx.AsyncClient and asyncio.sleep."""

    @abstractmethod
    async def _run(self, plan: Plan[T]) -> T: ...


class _Shared:
    """A method of both sides: ``sync`` for a ``SyncSide`` handle, ``asynchronous`` for an
    ``AsyncSide`` one. Read on a class it is that side's plain function, as a method is."""

    def __init__(
        self,
        written: Callable[..., Any],
        sync: Callable[..., Any],
        asynchronous: Callable[..., Any],
    ) -> None:
        self.__doc__, self.__wrapped__ = written.__doc__, written
        self._sync, self._async = sync, asynchronous

    def _bind(self, handle: object, owner: type[Any]) -> Any:
        side = owner if handle is None else type(handle)
        if not issubclass(side, SyncSide | AsyncSide):
            return self
        function = self._async if issubclass(side, AsyncSide) else self._sync
        return function if handle is None else types.MethodType(function, handle)


class Operation(_Shared, Generic[P, T]):
    """A method written once as a plan; see the module docstring."""

    def __init__(self, plan: Callable[Concatenate[Any, P], Plan[T]]) -> None:
        @functools.wraps(plan)
        def run(handle: SyncSide, *args: Any, **kwargs: Any) -> T:
            return handle._run(plan(handle, *args, **kwargs))

        @functools.wraps(plan)
        async def run_async(handle: AsyncSide, *args: Any, **kwargs: Any) -> T:
            return await handle._run(plan(handle, *args, **kwargs))

        super().__init__(plan, run, run_async)

    @overload
    def __get__(self, handle: None, owner: type[SyncSide]) -> Callable[Concatenate[Any, P], T]: ...
    @overload
    def __get__(
        self, handle: None, owner: type[AsyncSide]
    ) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]: ...
    @overload
    def __get__(self, handle: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, handle: SyncSide, owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, handle: AsyncSide, owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(self, handle: object, owner: type[Any]) -> Any:
        return self._bind(handle, owner)


class Paged(_Shared, Generic[P, T]):
    """A method written once as a ``Pager``; see the module docstring."""

    def __init__(self, pages: Callable[Concatenate[Any, P], Pager[T]]) -> None:
        @functools.wraps(pages)
        def walk(handle: SyncSide, *args: Any, **kwargs: Any) -> Iterator[T]:
            pager = pages(handle, *args, **kwargs)
            cursor: str | None = None
            while True:
                page = handle._run(pager(cursor))
                yield from page.items
                if (cursor := page.next_cursor) is None:
                    return

        @functools.wraps(pages)
        async def walk_async(handle: AsyncSide, *args: Any, **kwargs: Any) -> AsyncIterator[T]:
            pager = pages(handle, *args, **kwargs)
            page = await handle._run(pager(None))
            for item in page.items:
                yield item
            while page.next_cursor is not None:
                page = await handle._run(pager(page.next_cursor))
                for item in page.items:
                    yield item

        super().__init__(pages, walk, walk_async)

    @overload
    def __get__(
        self, handle: None, owner: type[SyncSide]
    ) -> Callable[Concatenate[Any, P], Iterator[T]]: ...
    @overload
    def __get__(
        self, handle: None, owner: type[AsyncSide]
    ) -> Callable[Concatenate[Any, P], AsyncIterator[T]]: ...
    @overload
    def __get__(self, handle: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, handle: SyncSide, owner: type[Any]) -> Callable[P, Iterator[T]]: ...
    @overload
    def __get__(self, handle: AsyncSide, owner: type[Any]) -> Callable[P, AsyncIterator[T]]: ...
    def __get__(self, handle: object, owner: type[Any]) -> Any:
        return self._bind(handle, owner)


def operation(plan: Callable[Concatenate[Any, P], Plan[T]]) -> Operation[P, T]:
    return Operation(plan)


def paged(pages: Callable[Concatenate[Any, P], Pager[T]]) -> Paged[P, T]:
    return Paged(pages)
