"""Shared pytest set-up: chapter discovery, and a guard against a notebook run that tests nothing."""

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))


def pytest_collection_finish(session):
    """Under --nbval, every chapter notebook must have been collected: a run that compares
    no stored outputs must not look green."""
    if not session.config.getoption("nbval", default=False):
        return
    collected = {Path(str(item.fspath)).resolve() for item in session.items}
    requested = [Path(arg.split("::")[0]).resolve() for arg in session.config.args]
    expected = [nb for nb in CHAPTERS if any(nb == r or r in nb.parents for r in requested)]
    missing = [nb.name for nb in expected if nb not in collected]
    if missing:
        raise pytest.UsageError(f"--nbval collected no cells from: {', '.join(missing)}")


@pytest.fixture(scope="session")
def chapter_paths():
    assert CHAPTERS, "no chapter notebooks found in chapters/"
    return CHAPTERS


def leaves_global_random_state_alone(check, answer):
    """Run an exercise check on ``answer`` and assert that PyTorch's global random state is as before:
    a check draws its test cases from its own generator, never from the learner's seed."""
    torch.manual_seed(0)
    before = torch.rand(3)
    torch.manual_seed(0)
    check(answer)
    torch.testing.assert_close(torch.rand(3), before)
