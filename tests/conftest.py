"""Fixtures shared by the whole suite.

Real data lives in ../shared/data beside the checkout (CI has it; a user's fresh clone may not):
tests that need it use these fixtures and skip with a clear reason when it is absent. Tests of a mechanism
use the sample that ships with hardneg instead (`sample_train`, and `sample_stage1` / `sample_stage2`: the
sample judged in the reference implementation's layout, see tests/support/judged_sample.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardneg import progress
from hardneg.data.sample import sample_train_path
from support.judged_sample import write_judged_sample
from support.tiny_beir import make_beir

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HARDNEG_SHARED_DATA", REPO.parent / "shared" / "data"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path} (../shared/data is absent: a fresh clone)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _need(SHARED_DATA)


@pytest.fixture(scope="session")
def rlhn_stage1() -> Path:
    """25 FiQA instances judged by GPT-4o-mini (reference-implementation rows)."""
    return _need(SHARED_DATA / "rlhn-sample" / "fiqa.stage_1.gpt-4o-mini.jsonl.gz")


@pytest.fixture(scope="session")
def rlhn_stage2() -> Path:
    """The 17 routed FiQA instances judged by GPT-4o."""
    return _need(SHARED_DATA / "rlhn-sample" / "fiqa.stage_2.gpt-4o.jsonl.gz")


@pytest.fixture(scope="session")
def scifact_dir() -> Path:
    return _need(SHARED_DATA / "scifact")


@pytest.fixture(scope="session")
def arguana_dir() -> Path:
    return _need(SHARED_DATA / "arguana")


# -- the shipped sample (no ../shared needed) -------------------------------------------------------------------


@pytest.fixture(scope="session")
def sample_train() -> Path:
    """The shipped sample: 24 Tevatron instances (6-10 negatives each), 5 known false negatives."""
    return sample_train_path()


@pytest.fixture(scope="session")
def sample_judged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_judged_sample(tmp_path_factory.mktemp("sample-judged"))


@pytest.fixture(scope="session")
def sample_stage1(sample_judged: tuple[Path, Path]) -> Path:
    """The 24 sample instances judged at stage 1 (9 flagged), as the reference implementation writes them."""
    return sample_judged[0]


@pytest.fixture(scope="session")
def sample_stage2(sample_judged: tuple[Path, Path]) -> Path:
    """The 9 rows stage 1 flagged, judged at stage 2 (5 still flagged: the known false negatives)."""
    return sample_judged[1]


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A tiny hand-made BEIR folder (tests/support/tiny_beir.py)."""
    return make_beir(tmp_path / "tinyset")


@pytest.fixture(scope="session")
def ray_local() -> object:
    """A real local Ray with 2 CPUs, shared by the engine tests (tests/support/ray_cluster.py), shut down after."""
    from support.ray_cluster import local_ray

    with local_ray(num_cpus=2) as ray:
        yield ray


@pytest.fixture(autouse=True)
def _progress_state_does_not_leak() -> Iterator[None]:
    """An in-process CLI call with --quiet (CliRunner) sets hardneg.progress's process-wide state: reset it after
    each test so no test depends on the order the suite runs in."""
    yield
    progress.set_library_bars(True)
    progress.set_quiet(False)
    progress.set_phase_hook(None)


# -- running the suite on two workers (`make test`: pytest-xdist, `-n 2 --dist loadgroup`) ------------------------

RAY_TEST_FILES = ("test_engine.py", "test_sharded.py")


@pytest.hookimpl(tryfirst=True)  # the marks must be on before xdist's worker hook reads them into the node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every Ray test runs on one worker: they share one local Ray (`ray_local`) and start clusters of their own,
    and two local Rays on a 2-core machine only contend. The docs tests share one worker too: their runner runs a
    block that the README and a site page both show once per process (tests/docs/harness.py). Without xdist the
    marks are inert."""
    for item in items:
        if item.path.name in RAY_TEST_FILES or "ray_local" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("ray"))
        elif item.path.parent.name == "docs":  # one runner per process: identical blocks then run once
            item.add_marker(pytest.mark.xdist_group("docs"))
