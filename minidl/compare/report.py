"""``minidl compare`` for people: tables on the terminal, and the loss curves as a PNG."""

from __future__ import annotations

from typing import Any


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*header), line.format(*["-" * w for w in widths])]
    out += [line.format(*row) for row in rows]
    return "\n".join(out)


def render(result: dict[str, Any]) -> str:
    """Every section as a readable table."""
    names, m = result["strategies"], result["m"]
    parts = [f"Where does the 1/m go? One batch of m = {m}, float64; ratios are to 'absorbed'.",
             ""]
    header = ["grad"] + [f"{n} |norm| (ratio)" for n in names] + ["verdict"]
    rows = []
    for row in result["where"]:
        cells = [f"{row['norm'][n]:.4g} ({row['ratio'][n]:.4g})" for n in names]
        verdict = "; ".join(f"{n}: {row['verdicts'][n]}" for n in names if n != "absorbed")
        rows.append([row["row"], *cells, verdict])
    parts += [_table(header, rows), ""]
    costs = ", ".join(f"{n} {result['cost'][n]:.6g}" for n in names)
    parts += [f"Reported cost: {costs}", ""]

    eq = result["equivalence"]
    parts.append("Equivalence: max relative difference of dW, db against absorbed x cost factor")
    parts.append(_table(["strategy", "cost factor", "one batch", f"after {eq['steps']} steps"],
                        [[n, f"{result['cost_factor'][n]:.6g}", f"{eq['one_batch'][n]:.2e}",
                          f"{eq['after_steps'][n]:.2e}"] for n in names]))
    parts.append("")

    acc = result["accumulation"]
    sizes = acc["micro_batches"]
    parts.append(f"Accumulation: {len(sizes)} micro-batches ({sizes[0]} ... {sizes[-1]}) "
                 "against one full batch")
    parts.append(_table(["strategy", "rel. diff", "rel. diff after / count"],
                        [[n, f"{acc[n]['rel_diff']:.2e}",
                          f"{acc[n]['rel_diff_divided_by_count']:.2e}"] for n in names]))
    parts.append("")

    parts.append("Numerical stability: dW, db against the same strategy in float64; counts "
                 "over leaves (dW, db) / intermediates (dZ, dA)")
    rows = [[r["strategy"], r["dtype"], str(r["batch_size"]), f"{r['rel_error']:.2e}",
             *[f"{r['leaves'][k]}/{r['intermediates'][k]}" for k in ("inf", "nan", "underflow")]]
            for r in result["stability"]]
    parts.append(_table(["strategy", "dtype", "m", "rel. error", "inf", "nan", "underflow"],
                        rows))
    parts.append("")
    finals = ", ".join(f"{n} {curve[-1]:.4f}" for n, curve in result["curves"].items() if curve)
    parts.append(f"Training ({eq['steps']} steps, sum's lr scaled by 1/m): final mean loss "
                 f"{finals}")
    if result["mismatches"]:
        parts += ["", "MISMATCHES:"] + [f"  {item}" for item in result["mismatches"]]
    return "\n".join(parts)


def plot_curves(result: dict[str, Any], path: str) -> None:
    """Loss per step under each strategy, as a PNG (needs the ``plot`` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from minidl.storage import atomic_write_bytes

    figure, axis = plt.subplots(figsize=(7, 4))
    styles = ["-", "--", ":", "-."]
    for index, (name, curve) in enumerate(result["curves"].items()):
        axis.plot(range(1, len(curve) + 1), curve, styles[index % len(styles)], label=name,
                  linewidth=2)
    axis.set_xlabel("step")
    axis.set_ylabel("mean loss per example")
    axis.set_title(f"Same network, same batch (m = {result['m']}); sum's lr scaled by 1/m")
    axis.legend()
    figure.tight_layout()
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())
