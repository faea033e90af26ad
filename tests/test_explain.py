"""Occlusion maps: built a few patches per frame from the shipped LiteRT models, pointing at
the item and never at empty background."""

from __future__ import annotations

import numpy as np

from tests.conftest import ROOT
from waste_vision.engine.explain import OcclusionExplainer
from waste_vision.images import read_rgb, resize_for_model
from waste_vision.model.cascade import Cascade


def test_map_is_zero_on_plain_background_and_points_at_the_item(models_dir):
    cascade = Cascade(models_dir, backend="litert")
    photo = resize_for_model(
        read_rgb(ROOT / "assets" / "samples" / "glass_trashnet_glass102.jpg"), (200, 200)
    )
    crop = np.full((400, 400, 3), 127, np.uint8)  # the explainer's own occlusion grey
    crop[:200, :200] = photo.astype(np.uint8)  # the item fills the top-left quadrant
    result = cascade.classify(crop)
    explainer = OcclusionExplainer(cascade, grid=4, patches_per_frame=2)
    frames = 0
    while "k" not in explainer.maps:
        explainer.update([("k", crop, result)])
        frames += 1
        assert frames <= 8  # a guard: the loop must end
    assert frames == 8  # 16 patches at 2 a frame
    heat = explainer.maps["k"]
    assert heat.shape == (4, 4) and heat.min() >= 0.0 and heat.max() <= 1.0
    assert np.all(heat[2:, :] == 0) and np.all(heat[:, 2:] == 0)  # grey on grey: no change
    assert heat[:2, :2].max() == 1.0  # the most important patch is on the item


def test_maps_follow_the_regions_in_view(models_dir):
    cascade = Cascade(models_dir, backend="litert")
    crop = read_rgb(ROOT / "assets" / "samples" / "paper_trashnet_paper104.jpg")
    result = cascade.classify(crop)
    explainer = OcclusionExplainer(cascade, grid=2, patches_per_frame=4)
    explainer.update([("a", crop, result)])
    assert set(explainer.maps) == {"a"}
    explainer.update([("b", crop, result)])  # "a" left the view: its map goes
    assert set(explainer.maps) == {"b"}
