"""What a probe run writes: per-step and per-episode tables (CSV), the curves and weight heat maps (PNG),
the weights (NPZ) and a JSON summary.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from agents.experiments.probe_spec import Probe, ProbeResult, Rollout
from agents.util.atomic import atomic_write, atomic_write_json
from agents.util.csvfile import write_csv
from agents.util.figures import pyplot, save_figure

__all__ = ["episode_table", "plot_probe_curves", "plot_weight_heatmaps", "step_table", "write_probe_outputs"]


def _mean(x: np.ndarray) -> np.ndarray:
    """Mean over episodes (axis 0), NaN where every value is NaN, without warnings."""
    finite = np.isfinite(x)
    n = finite.sum(axis=0)
    s = np.where(finite, x, 0.0).sum(axis=0)
    return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def _std(x: np.ndarray) -> np.ndarray:
    """Population std over episodes (axis 0), NaN where every value is NaN."""
    m = _mean(x)
    finite = np.isfinite(x)
    n = finite.sum(axis=0)
    s = np.where(finite, (x - m) ** 2, 0.0).sum(axis=0)
    return np.where(n > 0, np.sqrt(s / np.maximum(n, 1)), np.nan)


def _pad(x: np.ndarray, horizon: int, hold: bool) -> np.ndarray:
    """Extend ``(E, H)`` to ``(E, horizon)`` columns, holding the last value (``hold``) or with zeros."""
    if x.shape[1] >= horizon:
        return x
    if x.shape[1] == 0:
        return np.zeros((x.shape[0], horizon))
    extra = (
        np.repeat(x[:, -1:], horizon - x.shape[1], axis=1)
        if hold
        else np.zeros((x.shape[0], horizon - x.shape[1]))
    )
    return np.concatenate([x, extra], axis=1)


def step_table(result: ProbeResult) -> list[dict[str, Any]]:
    """Per condition and step: mean over episodes of reward, cumulative reward and distance (and stds; NaN: none)."""
    h = max(r.rewards.shape[1] for r in result.rollouts)
    rows: list[dict[str, Any]] = []
    for r in result.rollouts:
        rew = _pad(r.rewards, h, hold=False)
        cum = np.cumsum(rew, axis=1)
        dist = _pad(r.distances, h, hold=True)
        run = _pad(r.running.astype(float), h, hold=False)
        cols = {
            "reward": _mean(rew),
            "cumulative_reward": _mean(cum),
            "distance": _mean(dist),
            "reward_std": _std(rew),
            "cumulative_reward_std": _std(cum),
            "distance_std": _std(dist),
        }
        running = run.sum(axis=0)
        for t in range(h):
            row: dict[str, Any] = {"condition": r.label, "t": t}
            row.update({k: float(v[t]) for k, v in cols.items()})
            row["episodes_running"] = int(running[t])
            rows.append(row)
    return rows


def episode_table(result: ProbeResult) -> list[dict[str, Any]]:
    """One row per condition and episode: env seed, return, final distance ("" if none), length."""
    rows = []
    for r in result.rollouts:
        for e, s in enumerate(r.seeds):
            n = int(r.lengths[e])
            d = r.distances[e, n - 1] if n else np.nan
            rows.append(
                {
                    "condition": r.label,
                    "episode": e,
                    "seed": s,
                    "return": float(r.returns[e]),
                    "distance": float(d) if np.isfinite(d) else "",
                    "length": n,
                }
            )
    return rows


def plot_probe_curves(result: ProbeResult, path: str | os.PathLike) -> Path:
    """Reward per step, cumulative reward and distance, baseline vs each condition, probe window marked."""
    plt = pyplot()
    has_d = any(r.has_distance for r in result.rollouts)
    panels = ["reward", "cumulative_reward"] + (["distance"] if has_d else [])
    titles = {"reward": "reward per step", "cumulative_reward": "cumulative reward", "distance": "distance"}
    rows = step_table(result)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4), dpi=110, squeeze=False)
    colours = {"baseline": "black"}
    for k, c in enumerate(result.conditions):
        colours[c.label] = f"C{k % 10}"
    for ax, key in zip(axes[0], panels):
        for r in result.rollouts:
            sel = [row for row in rows if row["condition"] == r.label]
            t = np.array([row["t"] for row in sel])
            y = np.array([row[key] for row in sel], dtype=float)
            colour = colours[r.label]
            ax.plot(t, y, color=colour, lw=1.2, label=r.label)
            if key != "reward" and len(r.seeds) > 1:
                sd = np.array([row[key + "_std"] for row in sel], dtype=float)
                ax.fill_between(t, y - sd, y + sd, color=colour, alpha=0.12, lw=0)
        for c in result.conditions:
            if c.kind == "freeze-actuators":
                assert c.window is not None
                ax.axvspan(c.window[0], c.window[1], color=colours[c.label], alpha=0.15)
            else:
                ax.axvline(c.start, color=colours[c.label], ls="--", lw=1)
        ax.set_xlabel("step t")
        ax.set_title(titles[key])
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    n = len(result.baseline.seeds)
    note = " - some episodes ended before the probe" if result.warnings() else ""
    fig.suptitle(
        f"{result.probe.label} on {result.env_id} (mean of {n} episode{'s' if n > 1 else ''}){note}",
        fontsize=10,
    )
    fig.tight_layout()
    return save_figure(fig, path)


def plot_weight_heatmaps(
    result: ProbeResult, condition: Rollout, probe: Probe, path: str | os.PathLike
) -> Path:
    """Episode 0's plastic weights before, at and after the probe (rows: layers), plus the baseline after.

    Exact zeros are drawn black (the paper's black band of zeroed weights); colours are symmetric per layer.
    """
    plt = pyplot()
    steps = sorted(condition.snapshots)
    cols = [(f"t={s}" + (" (probe)" if s == probe.start else ""), condition.snapshots[s]) for s in steps]
    if steps and steps[-1] in result.baseline.snapshots:
        cols.append((f"baseline t={steps[-1]}", result.baseline.snapshots[steps[-1]]))
    n_layers = len(cols[0][1]) if cols else 0
    height = 0.9 + 2.7 * n_layers
    fig, axes = plt.subplots(n_layers, len(cols), figsize=(3.6 * len(cols), height), dpi=110, squeeze=False)
    fig.subplots_adjust(
        left=0.05, right=0.97, bottom=0.45 / height, top=1 - 0.75 / height, wspace=0.3, hspace=0.6
    )
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="black")
    for j in range(n_layers):
        vals = np.concatenate([c[1][j][np.isfinite(c[1][j])].ravel() for c in cols])
        vmax = float(np.abs(vals).max()) if vals.size else 1.0
        norm = plt.Normalize(-vmax or -1.0, vmax or 1.0)
        for k, (title, ws) in enumerate(cols):
            ax = axes[j][k]
            w = np.ma.masked_where((ws[j] == 0) | ~np.isfinite(ws[j]), ws[j])
            im = ax.imshow(w, cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
            name = result.layer_names[j] if j < len(result.layer_names) else f"layer {j}"
            ax.set_title(f"{name}, {title}", fontsize=8)
            ax.set_xlabel("in", fontsize=7)
            ax.set_ylabel("out", fontsize=7)
            ax.tick_params(labelsize=6)
        fig.colorbar(im, ax=list(axes[j]), shrink=0.9)
    fig.suptitle(f"{probe.label}: plastic weights of episode 0 (zeros black)", fontsize=10)
    return save_figure(fig, path)


def write_probe_outputs(result: ProbeResult, out: str | os.PathLike) -> dict[str, Path]:
    """Write ``<slug>.csv`` (per step), ``<slug>_episodes.csv``, ``<slug>.png``, ``<slug>.json``, heatmaps."""
    out = Path(out)
    slug = result.probe.slug
    files: dict[str, Path] = {}
    files["steps_csv"] = write_csv(out / f"{slug}.csv", step_table(result), nonfinite="")
    files["episodes_csv"] = write_csv(out / f"{slug}_episodes.csv", episode_table(result))
    files["curves_png"] = plot_probe_curves(result, out / f"{slug}.png")
    heat: dict[str, str] = {}
    if result.probe.plastic_only:
        for c, r in zip(result.conditions, result.probed):
            if not r.snapshots:
                continue
            stem = c.slug
            png = plot_weight_heatmaps(result, r, c, out / f"{stem}_weights.png")
            arrays = {
                f"t{s}_{name}": w for s, ws in r.snapshots.items() for name, w in zip(result.layer_names, ws)
            }
            arrays.update(
                {
                    f"baseline_t{s}_{name}": w
                    for s, ws in result.baseline.snapshots.items()
                    if s in r.snapshots
                    for name, w in zip(result.layer_names, ws)
                }
            )
            npz = atomic_write(out / f"{stem}_weights.npz", lambda f, a=arrays: np.savez_compressed(f, **a))
            files[f"weights_png:{c.label}"] = png
            files[f"weights_npz:{c.label}"] = npz
            heat[c.label] = png.name
    summary = {
        "probe": result.probe.label,
        "env": result.env_id,
        "policy": result.policy_path,
        "episodes": len(result.baseline.seeds),
        "env_seeds": result.baseline.seeds,
        "seed": result.seed,
        "max_steps": result.horizon,
        "conditions": [
            {
                "condition": r.label,
                "return_mean": float(r.returns.mean()),
                "return_std": float(r.returns.std()),
                "distance_mean": _json_float(_final_distances(r).mean()) if r.has_distance else None,
                "distance_std": _json_float(_final_distances(r).std()) if r.has_distance else None,
                "length_mean": float(r.lengths.mean()),
                **({"zeroed_fraction": [float(m.mean()) for m in r.zeroed]} if r.zeroed is not None else {}),
            }
            for r in result.rollouts
        ],
        "episodes_at_probe": dict(zip([c.label for c in result.conditions], result.episodes_at_probe())),
        "warnings": result.warnings(),
        "files": {k: p.name for k, p in files.items()},
    }
    files["summary_json"] = atomic_write_json(out / f"{slug}.json", summary)
    return files


def _final_distances(r: Rollout) -> np.ndarray:
    """Each episode's distance after its last step."""
    n = r.lengths
    return np.array([r.distances[e, n[e] - 1] if n[e] else np.nan for e in range(len(n))])


def _json_float(v: float) -> float | None:
    """A JSON-safe float (None for NaN / inf)."""
    return float(v) if np.isfinite(v) else None
