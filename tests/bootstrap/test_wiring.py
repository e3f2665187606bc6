"""The routes' providers are checked against the container when it is wired."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from adapters.http.provided import PROVIDED
from application.library_service import LibraryService
from application.search_service import SearchService
from bootstrap.app import ROUTE_MODULES
from bootstrap.container import Container, WiringError, check_provided
from bootstrap.settings import Settings


@pytest.fixture
def container() -> Container:
    return Container(settings=Settings(storage="memory"))


def test_every_provider_the_routes_name_exists_and_makes_the_type_they_expect(
    container: Container,
) -> None:
    assert ROUTE_MODULES  # importing the routes declares their providers
    assert {"library_service", "chunk_service", "readiness", "node_role"} <= set(PROVIDED)
    check_provided(container, PROVIDED)


def test_a_misspelt_provider_name_fails_when_the_routes_are_wired(container: Container) -> None:
    with pytest.raises(WiringError, match="'library_servise': the container has no such"):
        check_provided(container, {"library_servise": LibraryService})


def test_a_provider_of_another_type_fails_when_the_routes_are_wired(
    container: Container,
) -> None:
    with pytest.raises(WiringError, match="'library_service': the routes want"):
        check_provided(container, {"library_service": SearchService})
    with pytest.raises(WiringError, match="'readiness'"):
        check_provided(container, {"readiness": Callable[[], int]})
