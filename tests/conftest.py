"""Session fixtures, built once per test session: the real data beside the project, one local
Ray, and one simulated world (atlas, pre-trained model, translator) for every engine test."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# The main job forks its build into a supervised child (atlasgrn.engine.supervisor); in-process
# tests read its stderr with capsys and share one Ray session, so they run it in this process.
# The tests of the supervisor itself start `python -m atlasgrn.run` without this variable.
os.environ.setdefault("ATLASGRN_IN_PROCESS", "1")
SHARED_DATA = Path(os.environ.get("ATLASGRN_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` by path (scripts/ is not a package, nor on sys.path)."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def shared_data_path(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test with a reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (needs ../shared/data beside "
                    "the project, or ATLASGRN_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_data_path()


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole session: 2 CPUs, 2 *logical* GPUs (placement is testable
    on a CPU box; the model falls back to CPU)."""
    import ray
    from ray.data import DataContext

    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=2, num_gpus=2, object_store_memory=200 * 1024**2,
                 include_dashboard=False, log_to_driver=False)
        started = True
    DataContext.get_current().enable_progress_bars = False
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def sim_world(tmp_path_factory):
    """The simulated atlas, a model pre-trained on it and a translator from train-translator."""
    from .engine_helpers import build_world

    return build_world(tmp_path_factory.mktemp("engine-world"))


@pytest.fixture(scope="session")
def clean_run(ray_session, sim_world, tmp_path_factory):
    """One complete job over the simulated world (2 replicas on the 2 logical GPUs): the
    reference run that the fault, resume and API tests compare their edges with."""
    from atlasgrn.engine.config import RunConfig
    from atlasgrn.engine.job import run_job

    out = tmp_path_factory.mktemp("clean") / "run"
    config = RunConfig(atlas=sim_world.atlas, out=str(out), model=sim_world.model_dir,
                       translator=sim_world.translator_dir, regulators=sim_world.regulators,
                       replicas=2, gpus_per_replica=1.0,
                       cpus_per_replica=0.5, progress_every_s=0.0)
    return out, run_job(config, log=lambda _m: None)


@pytest.fixture(scope="session")
def demo_run(ray_session, tmp_path_factory):
    """A finished build of the bundled demo atlas (2 regulators per dataset): the run that the
    results tests (edges, exports, report) read. It uses the session's Ray, so whichever test
    runs first, the session has its two logical GPUs."""
    from atlasgrn.run import main

    out = tmp_path_factory.mktemp("demo") / "run"
    assert main(["--out", str(out), "--max-regulators", "2", "--top", "0"]) == 0
    return out
