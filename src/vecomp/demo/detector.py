"""The demo's region detector: torchvision's Faster R-CNN around a tiny backbone.

It is the stand-in for bottom-up attention's detector on the synthetic scenes (pretrained by
``vecomp pretrain --objective region``); ``encoders/detector.py`` loads it by its architecture
name like any torchvision detector. torchvision is imported where the detector is built (see
``encoders/detector.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from ..encoders.detector import register_architecture

if TYPE_CHECKING:
    from torchvision.models.detection import FasterRCNN


class TinyBackbone(nn.Sequential):
    """Four strided convolutions (stride 8): enough for the synthetic scenes, fast on a CPU."""

    def __init__(self, channels: int = 64):
        layers, c_in = [], 3
        for c_out, stride in ((32, 2), (48, 2), (channels, 2), (channels, 1)):
            layers += [nn.Conv2d(c_in, c_out, 3, stride, 1), nn.BatchNorm2d(c_out), nn.ReLU()]
            c_in = c_out
        super().__init__(*layers)
        self.out_channels = channels


@register_architecture("fasterrcnn_mini")
def fasterrcnn_mini(
    num_classes: int, image_size: int = 64, channels: int = 64, representation: int = 256
) -> FasterRCNN:
    """The demo's region detector: torchvision's Faster R-CNN around a tiny backbone."""
    from torchvision.models import detection
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    anchors = detection.anchor_utils.AnchorGenerator(
        sizes=((6, 10, 16, 24),), aspect_ratios=((1.0,),)
    )
    return detection.FasterRCNN(
        TinyBackbone(channels),
        num_classes=None,  # the box predictor below fixes it
        rpn_anchor_generator=anchors,
        box_roi_pool=MultiScaleRoIAlign(["0"], output_size=5, sampling_ratio=2),
        box_head=TwoMLPHead(channels * 5 * 5, representation),
        box_predictor=FastRCNNPredictor(representation, num_classes),
        min_size=image_size,
        max_size=image_size,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.25, 0.25, 0.25],
    )
