"""Grid and patch encoders from timm, using timm's own feature API and data config.

Grid: ``features_only`` -> the last feature map [B, C, h, w] flattened to h*w tokens.
Patch: ``forward_features`` -> [B, prefix + h*w, D] (CLS / register tokens first).
Preprocessing comes from the model's pretrained config, with the image squashed to the input size
(no crop), so a token's box is its cell in the original image. timm and torchvision are imported
where they are used (see ``detector.py``).
"""

from __future__ import annotations

import torch

from ..weights import from_hub, local_path
from .base import EncoderOutput, VisionEncoder, full_mask, grid_boxes, with_prefix_boxes
from .registry import register_encoder


def create_timm_model(model: str, weights: str | None, **kwargs) -> torch.nn.Module:
    """A timm model with random, hub or local weights (a timm ``save_for_hf`` folder or a file)."""
    import timm

    if weights is None:
        return timm.create_model(model, pretrained=False, **kwargs)
    if weights == "hub":
        with from_hub(f"timm model {model}", model):
            return timm.create_model(model, pretrained=True, **kwargs)
    path = local_path(weights, f"timm model {model}")
    if path.is_dir():
        return timm.create_model(f"local-dir:{path}", pretrained=True, **kwargs)
    return timm.create_model(
        model, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, **kwargs
    )


def squash_data_config(model: torch.nn.Module) -> dict:
    """The model's data config, squashing the image to the size the model was built for."""
    from timm.data import resolve_data_config

    config = resolve_data_config({}, model=model)
    built_for = getattr(getattr(model, "patch_embed", None), "img_size", None)
    if built_for and getattr(model.patch_embed, "strict_img_size", False):
        config["input_size"] = (3, *built_for)
    config.update(crop_pct=1.0, crop_mode="squash")
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


class _TimmEncoder(VisionEncoder):
    def __init__(self, net: torch.nn.Module, dim: int, model: str, weights: str | None):
        data_config = squash_data_config(net)
        super().__init__(
            dim, {"library": "timm", "model": model, "weights": str(weights), **data_config}
        )
        self.net = net
        self._data_config = data_config

    def transform(self):
        from timm.data import create_transform

        return create_transform(**self._data_config, is_training=False)

    def tensor_transform(self):
        """timm's squash transform on a uint8 tensor: torch's antialiased resampling, which
        matches PIL's up to rounding (a grey level here and there)."""
        from torchvision.transforms import v2

        config = self._data_config
        return v2.Compose(
            [
                v2.Resize(config["input_size"][1:], v2.InterpolationMode(config["interpolation"])),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(config["mean"], config["std"]),
            ]
        )


@register_encoder("timm_grid")
class TimmGridEncoder(_TimmEncoder):
    """A CNN's last feature map as tokens (ResNet, ConvNeXt, ...)."""

    family = "grid"

    def __init__(
        self,
        model: str,
        weights: str | None = None,
        model_kwargs: dict | None = None,
        level: int = -1,
    ):
        """``level`` picks the feature map: -1 the last (stride 32), -2 the one before (16)."""
        net = create_timm_model(
            model, weights, features_only=True, out_indices=(level,), **(model_kwargs or {})
        )
        super().__init__(net, net.feature_info.channels()[-1], model, weights)
        self.preprocessing["level"] = level

    def forward(self, images: torch.Tensor) -> EncoderOutput:
        fmap = self.net(images)[-1]  # [B, C, h, w]
        batch, _, rows, cols = fmap.shape
        tokens = fmap.flatten(2).transpose(1, 2)  # [B, h*w, C]
        boxes = grid_boxes(rows, cols).to(tokens).expand(batch, -1, -1)
        return EncoderOutput(tokens, boxes, full_mask(batch, rows * cols, tokens.device))


@register_encoder("timm_patch")
class TimmPatchEncoder(_TimmEncoder):
    """A ViT's patch tokens, with its CLS / register tokens first (ViT, DeiT, CLIP-ViT in timm)."""

    family = "patch"

    def __init__(self, model: str, weights: str | None = None, model_kwargs: dict | None = None):
        net = create_timm_model(model, weights, num_classes=0, **(model_kwargs or {}))
        super().__init__(net, net.num_features, model, weights)

    def forward(self, images: torch.Tensor) -> EncoderOutput:
        tokens = self.net.forward_features(images)  # [B, prefix + h*w, D]
        rows, cols = self.net.patch_embed.dynamic_feat_size(images.shape[-2:])
        prefix = tokens.shape[1] - rows * cols
        boxes = with_prefix_boxes(grid_boxes(rows, cols), prefix).to(tokens)
        batch = tokens.shape[0]
        return EncoderOutput(
            tokens, boxes.expand(batch, -1, -1), full_mask(batch, tokens.shape[1], tokens.device)
        )
