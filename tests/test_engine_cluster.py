"""Cluster shapes the job must never wait forever on: replica requests resolved or refused before
any work is submitted, and a named cluster that does not answer refused in seconds."""

from __future__ import annotations

import socket
import time

import pytest

from atlasgrn.engine.cluster import check_reachable, cluster_address, place_replicas
from atlasgrn.errors import AtlasgrnError

CPU_HEAD = [{"CPU": 2.0, "memory": 1e9}]
GPU_NODE = {"CPU": 8.0, "GPU": 1.0}


def test_auto_gpus_fall_back_to_cpu_on_a_gpu_less_cluster():
    p = place_replicas("auto", 1.0, CPU_HEAD)
    assert p.gpus == 0.0 and "CPU" in p.reason


def test_auto_gpus_take_a_gpu_where_a_node_or_node_type_has_one():
    assert place_replicas("auto", 1.0, CPU_HEAD + [GPU_NODE]).gpus == 1.0


def test_explicit_gpus_on_a_gpu_less_cluster_are_refused_naming_both_sides():
    with pytest.raises(AtlasgrnError) as err:
        place_replicas(1.0, 1.0, CPU_HEAD)
    msg = str(err.value)
    assert "--gpus-per-replica 1 asked" in msg and "2 CPU + 0 GPU" in msg
    assert "\n" not in msg


def test_more_cpus_per_replica_than_any_node_has_are_refused():
    with pytest.raises(AtlasgrnError, match="--cpus-per-replica 4 fits no node"):
        place_replicas("auto", 4.0, CPU_HEAD)
    with pytest.raises(AtlasgrnError, match="--cpus-per-replica 16"):
        place_replicas(1.0, 16.0, CPU_HEAD + [GPU_NODE])


def test_fractional_and_zero_gpu_requests_that_fit_are_kept():
    assert place_replicas(0.5, 2.0, [GPU_NODE]).gpus == 0.5
    assert place_replicas(0, 2.0, CPU_HEAD).gpus == 0.0


def test_address_option_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert cluster_address("10.0.0.2:6379") == ("10.0.0.2:6379", "--address")
    assert cluster_address(None) == ("10.0.0.1:6379", "RAY_ADDRESS")
    monkeypatch.delenv("RAY_ADDRESS")
    assert cluster_address(None) == (None, "")


def test_a_cluster_that_does_not_answer_is_refused_in_seconds():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(AtlasgrnError) as err:
        check_reachable(f"127.0.0.1:{port}", "RAY_ADDRESS", timeout_s=3)
    assert time.monotonic() - t0 < 5
    assert f"127.0.0.1:{port} does not answer" in str(err.value)
    assert "RAY_ADDRESS" in str(err.value)


def test_replicas_that_only_fit_node_types_still_to_be_added_wait_longer():
    p = place_replicas("auto", 1.0, CPU_HEAD, [GPU_NODE], start_timeout_s=300)
    assert p.gpus == 1.0 and "autoscaler has to add" in p.reason
    assert p.start_timeout_s >= 1200
    assert place_replicas("auto", 1.0, CPU_HEAD + [GPU_NODE]).start_timeout_s == 300


def test_a_dashboard_address_is_refused_with_what_to_give_instead():
    with pytest.raises(AtlasgrnError) as err:
        check_reachable("http://127.0.0.1:8265", "RAY_ADDRESS")
    assert "dashboard" in str(err.value) and "ray job submit" in str(err.value)


def test_ipv6_addresses_are_understood():
    from atlasgrn.engine.cluster import _host_port

    assert _host_port("[::1]:6379") == ("::1", 6379)
    assert _host_port("10.0.0.1:6379") == ("10.0.0.1", 6379)


def test_a_replica_resource_pins_placement_to_the_nodes_that_have_it():
    pool_node = {"CPU": 2.0, "pool": 1.0}
    p = place_replicas("auto", 1.0, [{"CPU": 8.0, "GPU": 1.0}, pool_node],
                       resources={"pool": 1.0})
    assert p.gpus == 0.0  # the GPU node lacks the resource: the replicas run where it is
    with pytest.raises(AtlasgrnError) as err:
        place_replicas("auto", 1.0, CPU_HEAD, resources={"pool": 1.0})
    assert "--replica-resource pool=1 asked" in str(err.value)
    assert err.value.key == "--replica-resource"
