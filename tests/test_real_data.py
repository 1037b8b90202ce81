"""The real CelebA subset through the whole pipeline; skipped where ../shared is absent."""
from pathlib import Path

import numpy as np
import pytest

import helper
from facegan.config import preset
from facegan.data.images import cached_image_array
from facegan.training.loop import train

SUBSET = Path(__file__).resolve().parents[1].parent / "shared/data/processed-celeba-small-6k.zip"
pytestmark = pytest.mark.skipif(not SUBSET.is_file(), reason=f"{SUBSET} not present")


@pytest.fixture(scope="module")
def celeba(tmp_path_factory):
    return helper.download_extract(data_dir=str(tmp_path_factory.mktemp("data")), zip_path=str(SUBSET),
                                   progress=False)


def test_subset_extracts_to_the_course_layout(celeba):
    assert celeba.parts[-2:] == ("processed_celeba_small", "celeba")
    assert len(list(celeba.glob("*.jpg"))) == 6000


def test_real_faces_decode_into_the_cache(celeba, tmp_path):
    arr = cached_image_array(celeba, 64, tmp_path, progress=False)
    assert arr.shape == (6000, 64, 64, 3)
    # tight face crops: the centre (skin) is brighter and less varied than a random image would be
    centre = arr[:, 24:40, 24:40].astype(np.float32)
    assert 60 < centre.mean() < 200 and arr.std() > 30


def test_trains_on_real_faces(celeba, tmp_path):
    cfg = preset("tiny", data="celeba", data_dir=str(celeba.parents[1]), cache_dir=str(tmp_path / "c"),
                 out=str(tmp_path / "run"), image_size=64, batch_size=32)
    summary = train(cfg, progress=False, should_stop=lambda epochs: True)
    assert summary["images_seen"] == 6000 // 32 * 32
