"""``minidl compare`` for people: tables that fit 100 columns, each explained once below it.

Cells are short ("= (4e-16)", "× m", "× 1.0025"); a cell that does not apply is "—";
a table too wide for the strategies in the run is split into several, each repeating
the first column. The figure is in ``plot.py``.
"""

from __future__ import annotations

import textwrap
from typing import Any

WIDTH = 100
NOT_APPLICABLE = "—"


def _fit(header: list[str], rows: list[list[str]], keep: int) -> list[tuple[list[str],
                                                                          list[list[str]]]]:
    """Split columns after the first ``keep`` into tables no wider than WIDTH."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    groups: list[list[int]] = [[]]
    used = sum(widths[:keep]) + 2 * keep
    for index in range(keep, len(header)):
        if groups[-1] and used + widths[index] > WIDTH:
            groups.append([])
            used = sum(widths[:keep]) + 2 * keep
        groups[-1].append(index)
        used += widths[index] + 2
    columns = [list(range(keep)) + group for group in groups]
    return [([header[i] for i in cols], [[row[i] for i in cols] for row in rows])
            for cols in columns]


def table(header: list[str], rows: list[list[str]], keep: int = 1) -> str:
    """Left-aligned columns two spaces apart, split to fit WIDTH (first ``keep`` repeated)."""
    out = []
    for part_header, part_rows in _fit(header, rows, keep):
        widths = [max(len(str(cell)) for cell in column)
                  for column in zip(part_header, *part_rows)]
        line = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [line.format(*part_header), line.format(*["-" * w for w in widths])]
        lines += [line.format(*row) for row in part_rows]
        out.append("\n".join(text.rstrip() for text in lines))
    return "\n\n".join(out)


def note(text: str) -> str:
    """Prose under a table, wrapped to WIDTH."""
    return textwrap.fill(text, WIDTH)


def _e(value: float | None) -> str:
    return NOT_APPLICABLE if value is None else f"{value:.1e}"


def _lr_note(result: dict[str, Any]) -> str:
    """How each strategy's learning rate was scaled, naming only strategies in the run."""
    scaled = [f"{n}'s by {result['cost_factor_name'][n]}" for n in result["strategies"]
              if result["cost_factor_name"][n] != "1"]
    if not scaled:
        return f"lr {result['lr']:g} for every strategy (each reports a mean)"
    return (f"lr {result['lr']:g} divided by each strategy's cost factor "
            f"({', '.join(scaled)})")


def render(result: dict[str, Any]) -> str:
    """Every section as a table with its explanation, each line at most WIDTH columns."""
    names, m, ref = result["strategies"], result["m"], result["reference"]
    parts = [note(f"Where does the 1/m go? One batch of m = {m}, float64."), ""]
    header = ["grad", *[f"{n} (ref)" if n == ref else n for n in names]]
    rows = [[row["row"], *[f"{row['norm'][n]:<9.4g} {row['short'][n]}".rstrip()
                           for n in names]] for row in result["where"]]
    parts += [table(header, rows), note(
        f"Each cell: the gradient's norm, then how it compares with {ref}'s: '= (e)' equal "
        "to a relative difference e; '× k' exactly k times it (m is the batch size); "
        "'MISMATCH' not the gradient of the strategy's own cost (listed at the end). dZ "
        "and dA show where the 1/m lives; dW and db must be the gradient of each "
        f"strategy's reported cost, {ref}'s times its cost factor."), ""]
    if result.get("options"):
        parts += [note("Options: " + "; ".join(
            f"{n} {', '.join(f'{k}={v!r}' for k, v in opts.items())}"
            for n, opts in result["options"].items())), ""]

    eq = result["equivalence"]
    parts.append(table(["strategy", "reported cost", "cost factor", "one batch",
                        f"after {eq['steps']} steps"],
                       [[n, f"{result['cost'][n]:.6g}", result["cost_factor_name"][n],
                         _e(eq["one_batch"][n]), _e(eq["after_steps"][n])] for n in names]))
    parts += [note(f"Equivalence: the largest relative difference of dW, db from {ref}'s "
                   "times the cost factor, on one batch and after training on it with "
                   f"{_lr_note(result)}."), ""]

    acc = result["accumulation"]
    sizes = acc["micro_batches"]
    parts.append(table(["strategy", "accumulated", f"accumulated / {len(sizes)}"],
                       [[n, _e(acc[n]["rel_diff"]), _e(acc[n]["rel_diff_divided_by_count"])]
                        for n in names]))
    parts += [note(f"Accumulation: {len(sizes)} micro-batches ({sizes[0]} ... {sizes[-1]}) "
                   f"accumulated without clearing, relative difference from one batch of {m}; "
                   f"then divided by the {len(sizes)} micro-batches, the usual recipe for "
                   f"per-batch means. {NOT_APPLICABLE}: already exact."), ""]

    parts.append(_stability_table(result))
    parts += [note("Numerical stability: relative error of dW, db against the same strategy "
                   "in float64 (the reference, so float64 rows show "
                   f"{NOT_APPLICABLE}); 'N uf': values of dZ, dA, dW, db that underflowed "
                   "to 0 where float64 has none; 'N inf', 'N nan': such values; 'cost inf': "
                   "the reported cost overflowed."), ""]

    finals = ", ".join(f"{n} {curve[-1]:.4f}" for n, curve in result["curves"].items() if curve)
    parts.append(note(f"Training: {eq['steps']} steps of full-batch SGD, {_lr_note(result)}; "
                      f"final mean loss {finals}."))
    unscaled = result.get("curves_unscaled_lr") or {}
    if unscaled:
        parts.append(note("With lr {:g} unscaled instead: final mean loss {}.".format(
            result["lr"], ", ".join(f"{n} {c[-1]:.4g}" for n, c in unscaled.items() if c))))
    if result["mismatches"]:
        parts += ["", "MISMATCHES:"] + [textwrap.fill(item, WIDTH, initial_indent="  ",
                                                      subsequent_indent="    ")
                                        for item in result["mismatches"]]
    return "\n".join(parts)


def _stability_cell(row: dict[str, Any]) -> str:
    if row["dtype"] == "float64":
        return NOT_APPLICABLE
    counts = {k: row["leaves"][k] + row["intermediates"][k] for k in ("underflow", "inf", "nan")}
    cell = [_e(row["rel_error"])]
    cell += [f"{counts[k]} {label}" for k, label in (("underflow", "uf"), ("inf", "inf"),
                                                     ("nan", "nan")) if counts[k]]
    if not row["cost_finite"]:
        cell.append("cost inf")
    return ", ".join(cell)


def _stability_table(result: dict[str, Any]) -> str:
    names = result["strategies"]
    cells = {(r["batch_size"], r["dtype"], r["strategy"]): _stability_cell(r)
             for r in result["stability"]}
    keys = list(dict.fromkeys((r["batch_size"], r["dtype"]) for r in result["stability"]))
    rows = [[f"{m:,}", dtype, *[cells.get((m, dtype, n), NOT_APPLICABLE) for n in names]]
            for m, dtype in keys]
    return table(["m", "dtype", *names], rows, keep=2)
