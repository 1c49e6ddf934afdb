"""Content blocks: the unit exchanged between the overview, the tools and the controller.

A block is a plain dict in the shape transformers' multimodal chat templates and TRL accept:
``{"type": "text", "text": str}`` or ``{"type": "image", "image": PIL.Image.Image}``.
Plain dicts (not classes) keep them directly usable as message ``content`` lists.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

ContentBlock = dict[str, Any]


def text_block(text: str) -> ContentBlock:
    return {"type": "text", "text": text}


def image_block(image: Image.Image | np.ndarray) -> ContentBlock:
    """Wrap an image; arrays must be ``(H, W, 3) uint8`` RGB."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 array, got {image.shape} {image.dtype}")
        image = Image.fromarray(image)
    return {"type": "image", "image": image}


def count_images(blocks: list[ContentBlock]) -> int:
    return sum(1 for b in blocks if b.get("type") == "image")


def blocks_text(blocks: list[ContentBlock]) -> str:
    """The text of all text blocks joined by newlines (images are skipped)."""
    return "\n".join(b["text"] for b in blocks if b.get("type") == "text")
