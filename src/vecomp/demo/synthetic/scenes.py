"""Scene graphs of simple objects and their rendering.

A scene is a few objects, each with a shape, a colour, a size and a position; some scenes carry an
occluder (a grey cloud) that may hide objects, which is what makes an SNLI-VE hypothesis
"neutral": the image cannot tell. (colour, shape) pairs are unique within a scene so that a
referring expression such as "the red circle" always names one object.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

from PIL import Image, ImageDraw

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 210, 40),
    "purple": (140, 60, 190),
    "orange": (245, 140, 30),
}
SHAPES = ("circle", "square", "triangle", "diamond", "cross")
SIZES = {"small": 0.14, "large": 0.26}  # object extent as a fraction of the image side
BACKGROUND = (235, 235, 228)
OCCLUDER = (150, 150, 150)


@dataclass(frozen=True)
class SceneObject:
    shape: str
    color: str
    size: str
    x: float  # centre, as a fraction of the image width (0 = left)
    y: float  # centre, as a fraction of the image height (0 = top)
    hidden: bool = False  # under the occluder: in the scene graph, not in the picture

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"

    def bbox(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) as fractions of the image side."""
        half = SIZES[self.size] / 2
        return (self.x - half, self.y - half, self.x + half, self.y + half)


@dataclass(frozen=True)
class Scene:
    image_id: str
    objects: tuple[SceneObject, ...]
    occluder: tuple[float, float, float, float] | None = None  # (x0, y0, x1, y1) fractions

    @property
    def visible(self) -> tuple[SceneObject, ...]:
        return tuple(o for o in self.objects if not o.hidden)

    def find(self, color: str | None = None, shape: str | None = None, size: str | None = None):
        """Visible objects matching every given attribute."""
        return [
            o
            for o in self.visible
            if (color is None or o.color == color)
            and (shape is None or o.shape == shape)
            and (size is None or o.size == size)
        ]

    def to_json(self) -> dict:
        return {
            "image_id": self.image_id,
            "objects": [asdict(o) for o in self.objects],
            "occluder": list(self.occluder) if self.occluder else None,
        }


def _overlaps(a: SceneObject, b: SceneObject, margin: float = 0.02) -> bool:
    ax0, ay0, ax1, ay1 = a.bbox()
    bx0, by0, bx1, by1 = b.bbox()
    return not (
        ax1 + margin < bx0 or bx1 + margin < ax0 or ay1 + margin < by0 or by1 + margin < ay0
    )


def _inside(o: SceneObject, box: tuple[float, float, float, float]) -> bool:
    x0, y0, x1, y1 = o.bbox()
    return x0 >= box[0] and y0 >= box[1] and x1 <= box[2] and y1 <= box[3]


def _partly_covered(o: SceneObject, box: tuple[float, float, float, float] | None) -> bool:
    """True when the occluder cuts through the object (neither fully hidden nor fully clear)."""
    if box is None:
        return False
    x0, y0, x1, y1 = o.bbox()
    clear = x1 < box[0] or x0 > box[2] or y1 < box[1] or y0 > box[3]
    return not clear and not _inside(o, box)


def sample_scene(
    rng: random.Random,
    image_id: str,
    n_objects: tuple[int, int] = (2, 5),
    occluder_prob: float = 0.0,
    max_tries: int = 200,
) -> Scene:
    """Draw non-overlapping objects with unique (colour, shape) pairs, and maybe an occluder.

    The occluder covers about a third of the image; objects lie either wholly under it (hidden)
    or wholly clear of it, so every visible object can be recognised.
    """
    occluder = None
    if rng.random() < occluder_prob:
        x0, y0 = rng.uniform(0.0, 0.45), rng.uniform(0.0, 0.45)
        occluder = (round(x0, 3), round(y0, 3), round(x0 + 0.55, 3), round(y0 + 0.55, 3))
    target = rng.randint(*n_objects)
    objects: list[SceneObject] = []
    pairs = [(c, s) for c in COLORS for s in SHAPES]
    rng.shuffle(pairs)
    for color, shape in pairs[:target]:
        for _ in range(max_tries):
            size = rng.choice(tuple(SIZES))
            half = SIZES[size] / 2
            x = round(rng.uniform(half, 1 - half), 3)
            y = round(rng.uniform(half, 1 - half), 3)
            obj = SceneObject(shape, color, size, x, y)
            if _partly_covered(obj, occluder) or any(_overlaps(obj, o) for o in objects):
                continue
            hidden = occluder is not None and _inside(obj, occluder)
            objects.append(SceneObject(shape, color, size, x, y, hidden=hidden))
            break
    return Scene(image_id, tuple(objects), occluder)


def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    if shape == "cross":
        t = r / 3
        return [
            (cx - t, cy - r),
            (cx + t, cy - r),
            (cx + t, cy - t),
            (cx + r, cy - t),
            (cx + r, cy + t),
            (cx + t, cy + t),
            (cx + t, cy + r),
            (cx - t, cy + r),
            (cx - t, cy + t),
            (cx - r, cy + t),
            (cx - r, cy - t),
            (cx - t, cy - t),
        ]
    raise ValueError(f"no polygon for shape {shape!r}")


def _draw_polygon(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill):
    draw.polygon(_polygon(shape, cx, cy, r), fill=fill)


_DRAWERS = {
    "circle": lambda d, s, cx, cy, r, f: d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=f),
    "square": lambda d, s, cx, cy, r, f: d.rectangle((cx - r, cy - r, cx + r, cy + r), fill=f),
    "triangle": _draw_polygon,
    "diamond": _draw_polygon,
    "cross": _draw_polygon,
}


def render(scene: Scene, size: int) -> Image.Image:
    """Draw the scene at ``size`` x ``size`` pixels (hidden objects are drawn, then covered)."""
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        cx, cy, r = obj.x * size, obj.y * size, SIZES[obj.size] * size / 2
        _DRAWERS[obj.shape](draw, obj.shape, cx, cy, r, COLORS[obj.color])
    if scene.occluder:
        x0, y0, x1, y1 = (v * size for v in scene.occluder)
        draw.rectangle((x0, y0, x1, y1), fill=OCCLUDER)
    return image
