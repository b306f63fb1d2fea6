"""Region features imported from files instead of computed from images (``type: precomputed``).

The bottom-up-attention detector (Anderson et al. 2018) that most V+L work builds on is shared
as pre-extracted TSV files, not as a checkpoint a current library loads. This encoder names those
files per image pool; ``vecomp extract-features`` imports them into an ordinary feature store
(see :mod:`vecomp.features.bottom_up`), so training and analysis treat it as any other encoder.

``files`` maps each pool to its sources: keys of the dataset registry (downloaded, verified and
extracted like any dataset file, e.g. ``lxmert/mscoco_train2014_obj36.zip``) or local paths
(a ``.tsv`` file or a folder of them).
"""

from __future__ import annotations

from ..errors import VecompError
from .base import VisionEncoder
from .registry import EncoderSpecError, register_encoder

BOTTOM_UP_DIM = 2048  # the ResNet-101 detector's pooled region features


@register_encoder("precomputed")
class PrecomputedRegions(VisionEncoder):
    family = "region"

    def __init__(self, files: dict[str, list[str]], dim: int = BOTTOM_UP_DIM):
        if not isinstance(files, dict) or not all(
            isinstance(v, list) and v and all(isinstance(f, str) for f in v) for v in files.values()
        ):
            raise EncoderSpecError(
                "option files must map each image pool to a non-empty list of registry keys or "
                "paths, e.g. {coco: [lxmert/mscoco_train2014_obj36.zip]}"
            )
        if not isinstance(dim, int) or dim < 1:
            raise EncoderSpecError(f"option dim must be a positive integer, got {dim!r}")
        super().__init__(
            dim,
            {
                "source": "bottom-up-attention TSV",
                "boxes": "pixels / image size, clipped to [0, 1]",
                "dtype": "float32 -> float16",
            },
        )
        self.files = files

    def sources(self, pool: str) -> list[str]:
        if pool not in self.files:
            raise VecompError(
                f"the precomputed encoder lists no files for image pool {pool!r} (it has "
                f"{sorted(self.files)}); add files.{pool}: [...] or drop the tasks on that pool"
            )
        return self.files[pool]

    def forward(self, images):
        raise VecompError(
            "precomputed region features are imported from their files by "
            "`vecomp extract-features`, not computed from images"
        )
