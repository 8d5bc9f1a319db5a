"""image_grid: layout, titles, and showing itself in a notebook."""

import numpy as np
import pytest
from PIL import Image

from tryon_lab.plotting import image_grid


def test_grid_lays_out_mixed_images_in_rows():
    images = [Image.new("RGB", (16, 16), "red"), np.zeros((16, 16), bool), np.ones((16, 16, 3))]
    fig = image_grid(images, ["a", "b", "a much longer title that has to wrap onto lines"], ncols=2)
    assert len(fig.axes) == 4
    assert [len(ax.images) for ax in fig.axes] == [1, 1, 1, 0]
    assert "\n" in fig.axes[2].get_title()


def test_grid_renders_as_png_for_notebooks():
    assert image_grid([np.zeros((8, 8))])._repr_png_().startswith(b"\x89PNG")


def test_titles_must_match_images():
    with pytest.raises(ValueError, match="2 titles for 1 images"):
        image_grid([np.zeros((8, 8))], ["a", "b"])
