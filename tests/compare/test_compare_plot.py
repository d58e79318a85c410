"""minidl compare --plot: one figure, five panels drawn from the measured numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minidl.cli import main
from minidl.compare import compare
from minidl.compare.plot import ZERO, figure
from minidl.config import load_config

SMALL = ["--strategies", "deferred,absorbed,sum", "--dtypes", "float16,float32,float64",
         "--batch-sizes", "64,256", "--steps", "4"]


@pytest.fixture(scope="module")
def drawn():
    import matplotlib.pyplot as plt

    result = compare(load_config(), strategies=["deferred", "absorbed", "sum"],
                     dtypes=("float16", "float32", "float64"), batch_sizes=(64, 256), steps=6)
    fig = figure(result)
    yield result, fig
    plt.close(fig)


def _panel(fig, letter):
    return next(axis for axis in fig.axes if axis.get_title().startswith(f"({letter})"))


def test_five_panels_a_to_e(drawn):
    _, fig = drawn
    titles = sorted(axis.get_title()[:3] for axis in fig.axes if axis.get_title())
    assert titles == ["(a)", "(b)", "(c)", "(d)", "(e)"]
    for letter in "acde":
        assert _panel(fig, letter).get_yscale() == "log"


def test_a_shows_each_gradients_norm_per_strategy(drawn):
    result, fig = drawn
    heights = sorted(round(patch.get_height(), 12) for patch in _panel(fig, "a").patches)
    norms = sorted(round(row["norm"][n], 12) for row in result["where"]
                   for n in result["strategies"])
    assert heights == norms


def test_b_draws_the_difference_from_the_reference_on_a_log_scale(drawn):
    result, fig = drawn
    twin = next(axis for axis in fig.axes if axis is not _panel(fig, "b")
                and axis.bbox.bounds == _panel(fig, "b").bbox.bounds)
    assert twin.get_yscale() == "log"
    reference = np.array(result["curves"]["absorbed"])
    for line in twin.get_lines():
        name = line.get_label().split(" vs ")[0]
        relative = np.abs(np.array(result["curves"][name]) - reference) / reference
        want = np.maximum(np.maximum.accumulate(relative), ZERO)
        np.testing.assert_allclose(line.get_ydata(), want)
        assert line.get_ydata().max() < 1e-12  # identical curves: a flat line near 1e-16
    assert {line.get_label() for line in twin.get_lines()} == {"deferred vs absorbed",
                                                               "sum vs absorbed"}


def test_c_sets_the_unscaled_lr_beside_the_scaled_one(drawn):
    result, fig = drawn
    lines = {line.get_label(): line.get_ydata() for line in _panel(fig, "c").get_lines()}
    np.testing.assert_allclose(lines["sum, lr 1.2 / m"], result["curves"]["sum"])
    np.testing.assert_allclose(lines["sum, lr 1.2"], result["curves_unscaled_lr"]["sum"])


def test_d_and_e_plot_accumulation_and_low_precision_per_strategy(drawn):
    result, fig = drawn
    d = {line.get_label(): line for line in _panel(fig, "d").get_lines()}
    assert set(d) == {"deferred", "absorbed", "absorbed / micro-batches", "sum"}
    sweep = result["accumulation_sweep"]
    np.testing.assert_allclose(d["absorbed"].get_ydata(),
                               [run["absorbed"]["rel_diff"] for run in sweep])
    e = {line.get_label(): line for line in _panel(fig, "e").get_lines()}
    assert set(e) == {f"{n}, {d}" for n in result["strategies"] for d in ("float16", "float32")}
    assert list(e["sum, float16"].get_xdata()) == [64, 256]


def test_the_cli_writes_svg_by_extension_and_says_where(tmp_path, capsys):
    path = tmp_path / "compare.svg"
    assert main(["compare", *SMALL, "--plot", str(path)]) == 0
    assert path.read_bytes().startswith(b"<?xml")
    assert "(e) low precision" in path.read_text()
    assert f"plot written to {path}" in capsys.readouterr().out


def test_a_png_with_json_says_where_on_stderr(tmp_path, capsys):
    path = tmp_path / "c.png"
    assert main(["compare", *SMALL, "--json", "--plot", str(path)]) == 0
    assert path.read_bytes().startswith(b"\x89PNG")
    out, err = capsys.readouterr()
    assert json.loads(out)["plot"] == str(path)
    assert f"plot written to {path}" in err


def test_another_extension_is_refused_before_any_work(tmp_path, capsys):
    assert main(["compare", "--plot", str(tmp_path / "c.pdf")]) == 2
    assert "must end in .png or .svg" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
