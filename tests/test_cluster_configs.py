"""The cluster and job definitions carry the settings a safe, resumable atlasgrn build needs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _load(rel: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((ROOT / rel).read_text()) if d]


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


def _cluster_specs() -> list[tuple[str, dict]]:
    specs = [("raycluster", _load("cluster/kuberay/raycluster.yaml")[0]["spec"]),
             ("rayjob", _load("cluster/kuberay/rayjob.yaml")[0]["spec"]["rayClusterSpec"])]
    cron, cm = _load("jobs/nightly-cronjob.yaml")
    nightly = yaml.safe_load(cm["data"]["rayjob.yaml"])
    specs.append(("nightly", nightly["spec"]["rayClusterSpec"]))
    return specs


@pytest.mark.parametrize("name,spec", _cluster_specs(), ids=lambda x: x if isinstance(x, str) else "")
def test_kuberay_clusters_are_token_authenticated_and_scale_gpus_from_zero(name, spec):
    assert spec["authOptions"]["mode"] == "token"
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    assert head["serviceType"] == "ClusterIP"  # dashboard never exposed publicly
    head_container = head["template"]["spec"]["containers"][0]
    assert _env(head_container)["RAY_AUTH_MODE"] == "token"
    assert spec["enableInTreeAutoscaling"] is True
    gpu = [g for g in spec["workerGroupSpecs"] if g["groupName"] == "gpu"][0]
    assert gpu["minReplicas"] == 0 and gpu["maxReplicas"] >= 1
    worker = gpu["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == gpu["rayStartParams"]["num-gpus"]
    assert _env(worker)["RAY_AUTH_MODE"] == "token"


@pytest.mark.parametrize("rel,spot_check", [
    ("cluster/launcher/aws-gpu.yaml",
     lambda nc: nc["InstanceMarketOptions"]["MarketType"] == "spot"),
    ("cluster/launcher/gcp-gpu.yaml",
     lambda nc: {"preemptible": True} in nc["scheduling"]),
])
def test_launcher_configs_use_spot_gpus_with_min_workers_zero(rel, spot_check):
    cfg = _load(rel)[0]
    gpu_types = {k: v for k, v in cfg["available_node_types"].items()
                 if v.get("resources", {}).get("GPU", 0) > 0}
    assert gpu_types, "a GPU worker type is defined"
    for node in gpu_types.values():
        assert node["min_workers"] == 0
        assert spot_check(node["node_config"])
    head = cfg["available_node_types"][cfg["head_node_type"]]
    assert head["resources"]["CPU"] == 0
    start = " ".join(cfg["head_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in start and "--dashboard-host=127.0.0.1" in start
    assert all("RAY_AUTH_MODE=token" in c for c in cfg["worker_start_ray_commands"] if "start" in c)


def test_nightly_job_has_one_deterministic_submission_per_date():
    cron, cm = _load("jobs/nightly-cronjob.yaml")
    assert cron["kind"] == "CronJob" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert "__DATE__" not in cron["spec"]["jobTemplate"]["spec"]["template"]["spec"][
        "containers"][0]["args"][0].replace("s/__DATE__/", "")
    rendered = yaml.safe_load(cm["data"]["rayjob.yaml"].replace("__DATE__", "2026-11-24"))
    assert rendered["metadata"]["name"] == "atlasgrn-nightly-2026-11-24"
    assert rendered["spec"]["jobId"] == "atlasgrn-nightly-2026-11-24"
    entry = rendered["spec"]["entrypoint"].split()
    assert entry[:3] == ["python", "-m", "atlasgrn.run"]
    assert entry[entry.index("--out") + 1].endswith("/2026-11-24")


def _entrypoints() -> list[tuple[str, str]]:
    cron, cm = _load("jobs/nightly-cronjob.yaml")
    nightly = yaml.safe_load(cm["data"]["rayjob.yaml"].replace("__DATE__", "2026-11-24"))
    return [("rayjob", _load("cluster/kuberay/rayjob.yaml")[0]["spec"]["entrypoint"]),
            ("nightly", nightly["spec"]["entrypoint"])]


@pytest.mark.parametrize("name,entrypoint", _entrypoints(), ids=lambda x: x if len(x) < 12 else "")
def test_job_entrypoints_parse_with_the_engines_real_options(name, entrypoint):
    from atlasgrn.run import config_from_args, parser

    argv = entrypoint.split()
    assert argv[:3] == ["python", "-m", "atlasgrn.run"]
    args = parser().parse_args(argv[3:])  # an unknown option exits 2 here
    config = config_from_args(args)
    config.validate()
    assert config.atlas.startswith("s3://") and config.out.startswith("s3://")
    assert config.replicas >= 1 and config.gpus_per_replica > 0
    if name == "nightly":  # nights share one probe store: each probes only what is new
        assert config.cache and config.cache.startswith("s3://")
        assert "2026-11-24" not in config.cache  # not under one night's output
