"""``graphkit.benchmarking.save_figure``: the one atomic figure writer of the benchmark scripts."""

import os

import matplotlib.image
import matplotlib.pyplot as plt
import pytest

from graphkit.benchmarking import save_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture()
def fig():
    f, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1, 2], [1, 0, 1])
    yield f
    plt.close(f)


def test_writes_a_valid_png_in_the_suffix_format(fig, tmp_path):
    path = tmp_path / "plot.png"
    save_figure(fig, path, dpi=50)
    assert path.read_bytes().startswith(PNG_MAGIC)
    assert matplotlib.image.imread(path).shape[:2] == (75, 100)  # 1.5 x 2 inches at 50 dpi
    save_figure(fig, tmp_path / "plot.PDF")  # the suffix, not matplotlib's default, decides
    assert (tmp_path / "plot.PDF").read_bytes().startswith(b"%PDF")
    assert sorted(os.listdir(tmp_path)) == ["plot.PDF", "plot.png"]


def test_failure_leaves_no_temporary_file_and_the_old_figure(fig, tmp_path):
    path = tmp_path / "plot.svg"
    path.write_bytes(b"older figure")
    fig.axes[0].set_title(r"$\frac{$")  # mathtext that fails only while drawing
    with pytest.raises(ValueError):
        save_figure(fig, path)
    assert path.read_bytes() == b"older figure"
    assert os.listdir(tmp_path) == ["plot.svg"]


def test_unknown_suffix_fails_before_opening_a_file(fig, tmp_path):
    with pytest.raises(ValueError, match="cannot save a figure as 'plot.xyz'"):
        save_figure(fig, tmp_path / "plot.xyz")
    with pytest.raises(ValueError, match="cannot save a figure as 'plot'"):
        save_figure(fig, tmp_path / "plot")
    assert os.listdir(tmp_path) == []
