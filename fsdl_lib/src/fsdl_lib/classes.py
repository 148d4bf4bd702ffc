"""The six Intel scene classes, in the one order every model and page uses."""

from __future__ import annotations

from typing import Final

SCENE_CLASSES: Final[tuple[str, ...]] = (
    "buildings",
    "forest",
    "glacier",
    "mountain",
    "sea",
    "street",
)
"""Class names, sorted; a label's index is its position here."""

LABEL_TO_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(SCENE_CLASSES)}
INDEX_TO_LABEL: Final[dict[int, str]] = dict(enumerate(SCENE_CLASSES))


def label_index(label: str) -> int:
    """Return the index of ``label``; raise ``ValueError`` naming the valid classes otherwise."""
    try:
        return LABEL_TO_INDEX[label]
    except (KeyError, TypeError):
        valid = ", ".join(SCENE_CLASSES)
        raise ValueError(f"unknown scene class {label!r}; expected one of: {valid}") from None


def is_scene_class(label: object) -> bool:
    """True if ``label`` names one of the six classes."""
    return isinstance(label, str) and label in LABEL_TO_INDEX
