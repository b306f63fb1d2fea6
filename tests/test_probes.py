"""The planted-complementarity building blocks: probe questions and attribute-probe encoders."""

from __future__ import annotations

import random

import pytest
import torch
from torchvision.transforms.functional import pil_to_tensor

from vecomp.demo.synthetic.generate import SuiteSpec
from vecomp.demo.synthetic.probes import probe_templates
from vecomp.demo.synthetic.scenes import COLORS, Scene, SceneObject, render
from vecomp.encoders.factory import create_encoder
from vecomp.encoders.registry import EncoderSpecError

RED_CIRCLE = SceneObject("circle", "red", "large", 0.25, 0.25)
BLUE_SQUARE = SceneObject("square", "blue", "small", 0.75, 0.7)
GREEN_CROSS = SceneObject("cross", "green", "small", 0.7, 0.2)


def _scene(*objects, occluder=None) -> Scene:
    return Scene("1", tuple(objects), occluder)


def _pixels(*scenes) -> torch.Tensor:
    return torch.stack([pil_to_tensor(render(s, 64)).float() / 255 for s in scenes])


def _probe(sees: str):
    return create_encoder({"type": "attribute_probe", "sees": sees})


def test_probe_questions_are_fixed_texts_answered_by_one_kind_of_information():
    templates = probe_templates("vqav2", ["color", "shape", "position"])
    with_all, without = _scene(RED_CIRCLE), _scene(BLUE_SQUARE)
    asked = {i.text: i.answer for t in templates.values() for i in t(with_all)}
    assert asked == {
        "Is there a red object?": "yes",
        "Is there a circle?": "yes",
        "Is there an object in the top left corner?": "yes",
    }
    assert {i.answer for t in templates.values() for i in t(without)} == {"no"}


@pytest.mark.parametrize(
    ("objects", "answer"),
    [
        ((RED_CIRCLE,), "no"),  # both: not either-or
        ((BLUE_SQUARE,), "no"),  # neither
        ((SceneObject("circle", "blue", "small", 0.5, 0.5),), "yes"),  # a circle, nothing red
        ((SceneObject("cross", "red", "small", 0.5, 0.5), BLUE_SQUARE), "yes"),  # red, no circle
    ],
)
def test_the_either_or_probe_needs_colour_and_shape_together(objects, answer):
    (question,) = probe_templates("gqa", ["color_xor_shape"])["probe_color_xor_shape"](
        _scene(*objects)
    )
    assert question.text == "Is there either a red object or a circle, but not both?"
    assert question.answer == answer


def test_snli_probes_are_neutral_only_where_an_occluder_may_hide_the_object():
    (hypothesis,) = probe_templates("snli_ve", ["shape"])["probe_shape"](_scene(BLUE_SQUARE))
    assert (hypothesis.text, hypothesis.answer) == ("There is a circle.", "contradiction")
    hidden = _scene(BLUE_SQUARE, occluder=(0.0, 0.0, 0.5, 0.5))
    (hypothesis,) = probe_templates("snli_ve", ["shape"])["probe_shape"](hidden)
    assert hypothesis.answer == "neutral"


def test_the_suite_uses_probes_only_for_the_tasks_that_name_them():
    spec = SuiteSpec.from_dict({"probes": {"gqa": ["shape"]}})
    assert list(spec.templates("gqa")) == ["probe_shape"]
    assert spec.templates("vqav2") is None  # the study's own templates


def test_the_colour_probe_sees_the_colours_present_and_nothing_of_where():
    out = _probe("color")(_pixels(_scene(RED_CIRCLE, BLUE_SQUARE), _scene(GREEN_CROSS)))
    names = [*COLORS, "blank"]
    seen = [{names[t] for t in range(len(names)) if row[t]} for row in out.mask]
    assert seen == [{"red", "blue", "blank"}, {"green", "blank"}]
    assert (out.boxes == torch.tensor([0.0, 0.0, 1.0, 1.0])).all()


def test_the_shape_probe_gives_one_silhouette_per_visible_object_whatever_its_colour():
    red, blue = (
        SceneObject("circle", "red", "large", 0.3, 0.3),
        SceneObject("circle", "blue", "large", 0.3, 0.3),
    )
    moved = SceneObject("circle", "red", "large", 0.7, 0.6)
    out = _probe("shape")(_pixels(_scene(red), _scene(blue), _scene(moved)))
    assert out.mask.sum(1).tolist() == [2, 2, 2]  # the object and the blank token
    assert torch.allclose(out.tokens[0, 0], out.tokens[1, 0])  # colour does not matter
    assert torch.allclose(out.tokens[0, 0], out.tokens[2, 0])  # nor does position
    square = _probe("shape")(_pixels(_scene(SceneObject("square", "red", "large", 0.3, 0.3))))
    assert not torch.allclose(out.tokens[0, 0], square.tokens[0, 0])  # shape does
    hidden = _scene(BLUE_SQUARE, occluder=(0.5, 0.5, 1.0, 1.0))
    assert _probe("shape")(_pixels(hidden)).mask.sum() == 1  # hidden objects are not seen


def test_the_position_probe_gives_each_object_its_place_and_nothing_else():
    moved = SceneObject("square", "blue", "small", 0.75, 0.7)
    out = _probe("position")(_pixels(_scene(RED_CIRCLE, moved), _scene(BLUE_SQUARE)))
    assert out.tokens.shape[-1] == 3 and out.mask.sum(1).tolist() == [3, 2]
    centres = sorted(out.tokens[0, :2, :2].tolist())
    assert torch.allclose(
        torch.tensor(centres), torch.tensor([[0.25, 0.25], [0.75, 0.7]]), atol=0.03
    )
    same_place = _probe("position")(_pixels(_scene(moved)))
    assert torch.allclose(same_place.tokens[0, 0], out.tokens[1, 0])  # colour, shape: unseen
    box = out.boxes[0, 0]  # the top-left object comes first (labels follow pixel order)
    assert box.tolist() == pytest.approx([0.12, 0.12, 0.39, 0.39], abs=0.03)


def test_an_unknown_probe_kind_is_refused():
    with pytest.raises((EncoderSpecError, ValueError), match="sees must be one of"):
        _probe("texture")
    random.seed(0)
