"""The etcd the cluster tests start is real, and etcd3gw speaks its JSON gateway."""

from __future__ import annotations

import etcd3gw

from tests.support.etcd import EtcdProcess


def test_etcd3gw_discovers_the_v3_gateway_and_round_trips_a_key(etcd: EtcdProcess) -> None:
    client = etcd3gw.Etcd3Client(host="127.0.0.1", port=etcd.client_port, timeout=5)
    assert client.api_path == "/v3/"  # etcd 3.4 serves /v3/ (and /v3beta/)
    assert client.put("/stacksdb-test/k", "v")
    assert client.get("/stacksdb-test/k") == [b"v"]


def test_create_under_a_lease_wins_once_and_the_key_dies_with_the_lease(
    etcd: EtcdProcess,
) -> None:
    client = etcd3gw.Etcd3Client(host="127.0.0.1", port=etcd.client_port, timeout=5)
    lease = client.lease(ttl=2)
    assert client.create("/stacksdb-test/leader", "a", lease=lease)
    assert not client.create("/stacksdb-test/leader", "b")
    assert lease.refresh() > 0
    lease.revoke()
    assert client.get("/stacksdb-test/leader") == []
