"""Fixtures the training tests share."""
import pytest

from facegan.eval import metrics


@pytest.fixture
def scripted_fids(monkeypatch):
    """evaluate_generator returns the given FIDs in turn, so the best epoch is known in advance."""
    def script(*fids):
        queue = list(fids)

        def fake_evaluate(*args, **kwargs):
            return {"fid": queue.pop(0), "kid": 0.0, "kid_std": 0.0, "swd": 0.0, "n": 8}
        monkeypatch.setattr(metrics, "evaluate_generator", fake_evaluate)
    return script
