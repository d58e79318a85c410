"""``minidl compare --plot``: the comparison in one figure of five panels (needs matplotlib).

(a) where the 1/m lives: the norm of each dZ, dA, dW, db per strategy, log scale;
(b) the training curves, with each one's difference from the reference on a log scale,
    so identical curves show as a flat line near 1e-16 rather than one line hiding two;
(c) strategies whose cost is not a mean, trained with the lr scaled and unscaled;
(d) accumulation over uneven micro-batches: each strategy's error against the full batch;
(e) the relative error of dW, db against batch size, per strategy and low-precision dtype.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from minidl.errors import InvalidValueError
from minidl.storage import atomic_write_bytes

FORMATS = {".png": "png", ".svg": "svg"}
#: Where an exact zero is drawn on a log axis (float64's rounding is about 1e-16).
ZERO = 1e-18
STYLES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "D", "v"]  # shrinking, so that lines on top of each other all show


def plot_format(path: str | Path) -> str:
    """The image format a path asks for, by extension; refuses any other."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InvalidValueError(f"--plot {path}: the file must end in .png or .svg")
    return FORMATS[suffix]


def _floor(values: Any) -> np.ndarray:
    return np.maximum(np.asarray(values, dtype=np.float64), ZERO)


def figure(result: dict[str, Any]) -> Any:
    """The matplotlib Figure of the five panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    panels = axes.ravel()
    _where(panels[0], result)
    _curves(panels[1], result)
    _unscaled(panels[2], result)
    _accumulation(panels[3], result)
    _stability(panels[4], result)
    fig.delaxes(panels[5])
    fig.suptitle(f"Where does the 1/m go? The planar net, one batch of m = {result['m']}")
    fig.tight_layout()
    return fig


def save_plot(result: dict[str, Any], path: str | Path) -> None:
    """Draw the figure and write it, atomically, as PNG or SVG by the path's extension."""
    import matplotlib.pyplot as plt

    kind = plot_format(path)
    fig = figure(result)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=kind, dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def _where(axis: Any, result: dict[str, Any]) -> None:
    names, rows = result["strategies"], result["where"]
    width = 0.8 / len(names)
    positions = np.arange(len(rows))
    for index, name in enumerate(names):
        axis.bar(positions + index * width, _floor([row["norm"][name] for row in rows]),
                 width, label=name)
    axis.set_xticks(positions + 0.4 - width / 2, [row["row"] for row in rows])
    axis.set_yscale("log")
    low, high = axis.get_ylim()
    axis.set_ylim(low, high * 30)  # room for the legend above the bars
    axis.set_ylabel("norm of the gradient")
    axis.set_title("(a) where the 1/m lives: dZ, dA, dW, db")
    axis.legend(fontsize="small", loc="upper center", ncol=min(len(names), 3))


def _curves(axis: Any, result: dict[str, Any]) -> None:
    ref = result["reference"]
    curves = result["curves"]
    for index, (name, curve) in enumerate(curves.items()):
        axis.plot(range(1, len(curve) + 1), curve, STYLES[index % 4], label=f"{name} loss")
    axis.set_xlabel("step")
    axis.set_ylabel("mean loss per example")
    axis.set_title(f"(b) training, and |difference| from {ref}'s (right, log)")
    difference = axis.twinx()
    reference = np.asarray(curves.get(ref) or next(iter(curves.values())), dtype=np.float64)
    for index, (name, curve) in enumerate(curves.items()):
        if name == ref:
            continue
        relative = np.abs(np.asarray(curve, np.float64) - reference) / np.abs(reference)
        difference.plot(range(1, len(curve) + 1), _floor(np.maximum.accumulate(relative)),
                        STYLES[index % 4], color=f"C{index}", alpha=0.7,
                        label=f"{name} vs {ref}")
    difference.set_yscale("log")
    difference.set_ylim(ZERO / 10, 10)
    difference.set_ylabel(f"largest relative difference so far (0 drawn at {ZERO:g})")
    lines = axis.get_legend_handles_labels()
    extra = difference.get_legend_handles_labels()
    axis.legend(lines[0] + extra[0], lines[1] + extra[1], fontsize="small")


def _unscaled(axis: Any, result: dict[str, Any]) -> None:
    unscaled = result.get("curves_unscaled_lr") or {}
    axis.set_title("(c) a cost that is no mean: lr scaled or not")
    if not unscaled:
        axis.text(0.5, 0.5, "every strategy in this run reports a mean:\nnothing to rescale",
                  ha="center", va="center", transform=axis.transAxes)
        axis.set_axis_off()
        return
    for index, (name, curve) in enumerate(unscaled.items()):
        scaled = result["curves"][name]
        factor = result["cost_factor_name"][name]
        axis.plot(range(1, len(scaled) + 1), scaled, "-", color=f"C{index}",
                  label=f"{name}, lr {result['lr']:g} / {factor}")
        axis.plot(range(1, len(curve) + 1), curve, "--", color=f"C{index}",
                  label=f"{name}, lr {result['lr']:g}")
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("mean loss per example")
    axis.legend(fontsize="small")


def _accumulation(axis: Any, result: dict[str, Any]) -> None:
    sweep = result.get("accumulation_sweep") or [result["accumulation"]]
    sizes = [run["micro_batches"][0] for run in sweep]
    for index, name in enumerate(result["strategies"]):
        marker, size = MARKERS[index % 5], 9 - 1.5 * (index % 5)
        axis.plot(sizes, _floor([run[name]["rel_diff"] for run in sweep]), marker + "-",
                  markersize=size, color=f"C{index}", label=name)
        divided = [run[name]["rel_diff_divided_by_count"] for run in sweep]
        if any(value is not None for value in divided):
            axis.plot(sizes, _floor([np.nan if v is None else v for v in divided]),
                      marker + "--", markersize=size, color=f"C{index}",
                      label=f"{name} / micro-batches")
    axis.set_xlabel(f"micro-batch size (the last one shorter; m = {result['m']})")
    axis.set_yscale("log")
    axis.set_ylabel("relative difference from the full batch")
    axis.set_title("(d) accumulated micro-batches against one batch")
    axis.legend(fontsize="small")


def _stability(axis: Any, result: dict[str, Any]) -> None:
    rows = [r for r in result["stability"] if r["dtype"] != "float64"]
    dtypes = sorted({r["dtype"] for r in rows})
    for index, name in enumerate(result["strategies"]):
        for style, dtype in zip(("-", ":"), dtypes):
            mine = sorted((r["batch_size"], r["rel_error"]) for r in rows
                          if r["strategy"] == name and r["dtype"] == dtype)
            if mine:
                sizes, errors = zip(*mine)
                errors = [np.nan if not np.isfinite(e) else e for e in errors]
                axis.plot(sizes, _floor(errors), MARKERS[index % 5] + style,
                          markersize=9 - 1.5 * (index % 5), color=f"C{index}",
                          label=f"{name}, {dtype}")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("batch size m")
    axis.set_ylabel("relative error of dW, db vs float64")
    axis.set_title("(e) low precision: error against batch size")
    if rows:
        axis.legend(fontsize="small")
