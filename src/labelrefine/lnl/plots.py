"""Phase-1 figures: per-sample loss and VOG histograms, clean vs noisy labels."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from labelrefine.io import atomic_path  # noqa: E402


def _panel(ax: plt.Axes, values: np.ndarray, noisy: np.ndarray, title: str, log: bool) -> None:
    ok = np.isfinite(values)
    v, nz = values[ok], noisy[ok]
    if v.size == 0:
        ax.text(0.5, 0.5, "not computed", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
        return
    data = np.log10(np.maximum(v, 1e-12)) if log else v
    bins = np.linspace(data.min(), data.max() + 1e-12, 41)
    ax.hist(data[~nz], bins=bins, alpha=0.6, label=f"clean label (n={int((~nz).sum())})",
            color="tab:blue")
    ax.hist(data[nz], bins=bins, alpha=0.6, label=f"noisy label (n={int(nz.sum())})",
            color="tab:red")
    ax.set_title(title)
    ax.set_xlabel(f"log10 {title.split()[0].lower()}" if log else title.split()[0].lower())
    ax.set_ylabel("samples")
    ax.legend(fontsize=8)


def plot_loss_vog(
    path: str | Path, loss: np.ndarray, vog: np.ndarray | None, noisy: np.ndarray,
    title: str = "",
) -> Path:
    """Histograms of last-epoch loss (and VOG when given) for clean- vs noisy-label samples.

    ``loss``, ``vog`` and ``noisy`` are aligned over the training samples; non-finite values
    are skipped. The PNG is written atomically.
    """
    loss = np.asarray(loss, dtype=np.float64)
    noisy = np.asarray(noisy, dtype=bool)
    if loss.shape != noisy.shape or (vog is not None and np.shape(vog) != loss.shape):
        raise ValueError("loss, vog and noisy must have the same length")
    panels = 1 if vog is None else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 3.8), squeeze=False)
    _panel(axes[0, 0], loss, noisy, "Loss (last epoch)", log=True)
    if vog is not None:
        _panel(axes[0, 1], np.asarray(vog, dtype=np.float64), noisy, "VOG (last window)", log=True)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)
    return path
