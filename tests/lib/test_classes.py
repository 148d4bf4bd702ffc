import pytest

from fsdl_lib.classes import INDEX_TO_LABEL, LABEL_TO_INDEX, SCENE_CLASSES, is_scene_class, label_index


def test_six_sorted_classes_with_inverse_mapping():
    assert SCENE_CLASSES == ("buildings", "forest", "glacier", "mountain", "sea", "street")
    assert all(INDEX_TO_LABEL[LABEL_TO_INDEX[name]] == name for name in SCENE_CLASSES)


def test_label_index():
    assert label_index("sea") == 4
    with pytest.raises(ValueError, match="expected one of: buildings"):
        label_index("Sea")


@pytest.mark.parametrize("value", ["", "beach", None, 3, "forest "])
def test_is_scene_class_rejects(value):
    assert not is_scene_class(value)
