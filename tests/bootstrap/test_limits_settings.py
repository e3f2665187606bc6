"""Every limit and planner threshold is one ``Limits`` field, settable as STACKSDB_<NAME>, and
the OpenAPI document states the configured value where a schema names the limit."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from bootstrap.app import create_app
from bootstrap.settings import Settings
from domain.limits import Limits
from domain.models import IndexType


@pytest.mark.parametrize("name", list(Limits.model_fields))
def test_every_limit_is_a_setting_with_the_same_default(name: str) -> None:
    assert getattr(Settings(), name) == getattr(Limits(), name)


def test_every_limit_is_read_from_its_stacksdb_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("max_page_size", "max_metadata_keys", "max_list_items", "max_k"):
        monkeypatch.setenv(f"STACKSDB_{name.upper()}", "7")
    monkeypatch.setenv("STACKSDB_HNSW_EXACT_SCAN_SHARE", "0.5")
    limits = Settings().limits()
    assert type(limits) is Limits
    assert (limits.max_page_size, limits.max_metadata_keys, limits.max_list_items) == (7, 7, 7)
    assert limits.max_k == 7 and limits.hnsw_exact_scan_share == 0.5


def test_a_limit_out_of_its_bounds_is_refused_at_start() -> None:
    with pytest.raises(ValueError):
        Settings(max_page_size=0)
    with pytest.raises(ValueError):
        Settings(exact_scan_share=1.5)


def test_the_planner_scans_few_matches_with_its_thresholds_per_index_type() -> None:
    limits = Limits()
    assert limits.scans_matches(IndexType.IVF, 2_000, 1_000_000)
    assert not limits.scans_matches(IndexType.IVF, 8_000, 81_115)  # 10%: the masked lists
    assert limits.scans_matches(IndexType.HNSW, 8_000, 81_115)  # 10%: under HNSW's 15%
    assert not limits.scans_matches(IndexType.HNSW, 40_000, 81_115)


def test_openapi_states_the_configured_limits() -> None:
    settings = Settings(storage="memory", max_k=77, max_page_size=33, max_batch=9)
    document = create_app(settings).openapi()
    assert "x-stacksdb-limit" not in json.dumps(document)
    schemas = document["components"]["schemas"]
    assert schemas["SearchIn"]["properties"]["k"]["maximum"] == 77
    assert schemas["ChunkBatchIn"]["properties"]["chunks"]["maxItems"] == 9
    assert schemas["ChunkIn"]["properties"]["metadata"]["maxProperties"] == 64
    pages = [
        parameter["schema"]["maximum"]
        for path, item in document["paths"].items()
        if not path.startswith("/v1/cluster")
        for operation in item.values()
        for parameter in operation.get("parameters", [])
        if parameter["name"] == "limit"
    ]
    assert pages and set(pages) == {33}


def test_openapi_states_the_text_search_limits() -> None:
    settings = Settings(storage="memory", max_query_length=123, max_candidates=456)
    schemas = create_app(settings).openapi()["components"]["schemas"]
    assert schemas["SearchIn"]["properties"]["query"]["maxLength"] == 123
    assert schemas["HybridIn"]["properties"]["candidates"]["maximum"] == 456


def test_a_page_over_the_configured_size_is_refused() -> None:
    with TestClient(create_app(Settings(storage="memory", max_page_size=5))) as client:
        assert client.get("/v1/libraries", params={"limit": 5}).status_code == 200
        response = client.get("/v1/libraries", params={"limit": 6})
    assert response.status_code == 422
    assert "5" in response.json()["detail"]


def test_a_forwarded_write_outlasts_every_attempt_of_the_leaders_embedder() -> None:
    settings = Settings(
        embedder_timeout=20.0, embedder_retries=2, embedder_max_wait=5.0, replica_timeout=4.0
    )
    # The leader may spend three attempts of 20 s, two waits of 5 s and the replicas' 4 s
    # (74 s) before it answers; the follower must wait longer, but not without bound.
    assert 74.0 < settings.forward_timeout <= 74.0 + 60.0
