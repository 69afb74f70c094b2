"""Masked value reconstruction pre-training: losses, the loop, resumable state (torch only).

The loop knows nothing about atlases: it takes a factory of cell-batch iterators
(``gene_ids`` [B, L] int, ``values`` [B, L] float, pad positions carry ``arch.pad_id``) and a
fixed list of validation batches. It lives beside its feeder (:mod:`.sampler`, :mod:`.run`) but
imports no atlas code, so it runs the same on batches from anywhere (a test, a notebook).

Loss = MSE on masked positions + ``unmasked_weight`` x MSE on the unmasked real positions.
The second term matters for the probes: their virtual cells are fed *unmasked*, so the model
must have been trained to produce sensible outputs for unmasked inputs too.

Resumable state is a safetensors + JSON pair (no pickle): weights, AdamW moments, the masking
generator and the global torch RNG in ``train_state/state.safetensors``; step, best
validation loss, patience counter, history and optimizer hyper-parameters in
``train_state/state.json``. The data stream is re-created from ``(seed, step)`` on resume.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..atomic import write_path_atomic, write_text_atomic
from ..errors import CheckpointError
from ..models.checkpoint import save_model
from ..models.scgpt_model import ScGPTModel
from ..progress import Progress, format_seconds
from .config import PRECISIONS, TrainConfig

Batch = tuple[Any, Any]  # (gene_ids [B, L], values [B, L]) as numpy or torch
STATE_DIR = "train_state"
#: ``auto``: bf16 autocast where the model sits on CUDA, fp32 elsewhere (see
#: :func:`resolve_precision`, the one place that decides).




@dataclass
class TrainResult:
    step: int
    best_val: float
    best_step: int
    stopped_early: bool
    history: list[dict[str, float]] = field(default_factory=list)


# ----------------------------------------------------------------------------- masking & loss
def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32`` or ``bf16`` for training on ``device``: ``auto`` is bf16 on CUDA, else fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def autocast_for(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when asked; a no-op elsewhere (CPU bf16 is slower, not faster)."""
    if resolve_precision(precision, device) == "bf16" and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def as_tensors(batch: Batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    ids, vals = batch
    ids = torch.as_tensor(np.asarray(ids) if not torch.is_tensor(ids) else ids).long()
    vals = torch.as_tensor(np.asarray(vals) if not torch.is_tensor(vals) else vals).float()
    return ids.to(device), vals.to(device)


def choose_mask(ids: torch.Tensor, pad_id: int, ratio: float,
                generator: torch.Generator) -> torch.Tensor:
    """Bool [B, L]: ``round(ratio * n_real)`` (>= 1) random real positions per cell."""
    real = ids != pad_id
    scores = torch.rand(ids.shape, generator=generator, device="cpu").to(ids.device)
    scores = scores.masked_fill(~real, 2.0)
    rank = scores.argsort(dim=1).argsort(dim=1)
    n_real = real.sum(dim=1, keepdim=True)
    k = torch.clamp(torch.round(n_real.float() * ratio).long(), min=1)
    k = torch.minimum(k, n_real)
    return (rank < k) & real


def reconstruction_loss(model: ScGPTModel, ids: torch.Tensor, vals: torch.Tensor,
                        mask: torch.Tensor, unmasked_weight: float
                        ) -> tuple[torch.Tensor, float, float]:
    """(total loss, masked MSE, unmasked MSE) for one batch with ``mask`` applied."""
    a, v = model.config.arch, model.config.values
    inputs = vals.masked_fill(mask, v.mask_value)
    inputs = inputs.masked_fill(ids == a.pad_id, v.pad_value)
    pred = model(ids, inputs)
    sq = (pred.float() - vals) ** 2
    unmasked = (ids != a.pad_id) & ~mask
    masked_mse = sq[mask].mean() if mask.any() else sq.new_zeros(())
    unmasked_mse = sq[unmasked].mean() if unmasked.any() else sq.new_zeros(())
    loss = masked_mse + unmasked_weight * unmasked_mse
    return loss, float(masked_mse.detach()), float(unmasked_mse.detach())


@torch.no_grad()
def validation_loss(model: ScGPTModel, batches: Sequence[Batch], cfg: TrainConfig
                    ) -> dict[str, float]:
    """Mean masked / unmasked MSE on fixed batches with fixed masks (same every call)."""
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(cfg.seed + 7919)
    tot_m = tot_u = 0.0
    n = 0
    for i, batch in enumerate(batches):
        ids, vals = as_tensors(batch, model.device)
        mask = choose_mask(ids, model.config.arch.pad_id,
                           cfg.mask_ratios[i % len(cfg.mask_ratios)], gen)
        with autocast_for(model.device, cfg.precision):
            _, m, u = reconstruction_loss(model, ids, vals, mask, cfg.unmasked_weight)
        tot_m += m
        tot_u += u
        n += 1
    model.train(was_training)
    n = max(n, 1)
    return {"val_masked_mse": tot_m / n, "val_unmasked_mse": tot_u / n}


def prefetched(batches: Iterable[Batch], depth: int = 8) -> Iterator[Batch]:
    """Yield ``batches`` in order while a daemon thread builds the next ``depth`` ahead.

    Why: on a GPU the sampler (numpy, block reads) and the training step are similar in cost;
    overlapping them nearly doubles throughput. Order is unchanged, so runs stay deterministic.
    An exception in the producer is re-raised here, at the point the failed batch is needed.
    """
    buf: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in batches:
                while not stop.is_set():
                    try:
                        buf.put(("ok", item), timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buf.put(("ok", done))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            buf.put(("err", exc))

    thread = threading.Thread(target=produce, name="batch-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = buf.get()
            if kind == "err":
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up then cosine decay to ``min_lr_ratio * lr``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(cfg.steps - cfg.warmup_steps, 1)
    t = min((step - cfg.warmup_steps) / span, 1.0)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


# ----------------------------------------------------------------------------- resumable state
def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors = {}
    for pid, st in sd["state"].items():
        for name, t in st.items():
            tensors[f"opt.{pid}.{name}"] = torch.as_tensor(t).detach().cpu().contiguous()
    return tensors, {"param_groups": sd["param_groups"]}


def save_train_state(out_dir: Path, model: ScGPTModel, opt: torch.optim.Optimizer,
                     mask_gen: torch.Generator, meta: dict[str, Any]) -> None:
    state_dir = out_dir / STATE_DIR
    state_dir.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().float().contiguous()
               for k, v in model.state_dict().items()}
    opt_tensors, opt_meta = _optimizer_tensors(opt)
    tensors.update(opt_tensors)
    tensors["rng.mask"] = mask_gen.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    write_path_atomic(state_dir / "state.safetensors", lambda p: save_file(tensors, p))
    write_text_atomic(state_dir / "state.json",
                      json.dumps({**meta, "optimizer": opt_meta}, indent=1))


def load_train_state(out_dir: Path, model: ScGPTModel, opt: torch.optim.Optimizer,
                     mask_gen: torch.Generator) -> dict[str, Any]:
    """Restore what :func:`save_train_state` wrote; returns the JSON metadata."""
    state_dir = out_dir / STATE_DIR
    try:
        meta = json.loads((state_dir / "state.json").read_text())
        tensors = load_file(str(state_dir / "state.safetensors"))
    except FileNotFoundError:
        raise CheckpointError("no training state to resume from", path=str(state_dir),
                              remedy="run without --resume to start a new training") from None
    except Exception as exc:  # noqa: BLE001 - any decode failure is a broken state file
        raise CheckpointError(f"training state is unreadable ({exc})", path=str(state_dir),
                              remedy="delete train_state/ and start again") from None
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"saved weights do not fit this architecture ({exc})".split("\n")[0],
                              path=str(state_dir), key="model",
                              remedy="resume with the same --d-model/--layers/--max-len as the "
                                     "original run") from None
    opt_sd: dict[str, Any] = {"state": {}, "param_groups": meta["optimizer"]["param_groups"]}
    for key, t in tensors.items():
        if key.startswith("opt."):
            _, pid, name = key.split(".", 2)
            opt_sd["state"].setdefault(int(pid), {})[name] = t.to(model.device) \
                if name != "step" else t
    for group in opt_sd["param_groups"]:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    opt.load_state_dict(opt_sd)
    mask_gen.set_state(tensors["rng.mask"])
    torch.set_rng_state(tensors["rng.torch"])
    return meta


# ----------------------------------------------------------------------------- the loop
def make_optimizer(model: ScGPTModel, cfg: TrainConfig) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.dim() < 2 or "norm" in name else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=cfg.lr)


def _eta_text(progress: Progress) -> str:
    eta = progress.eta_s()
    return "?" if eta is None else format_seconds(eta)


def train(model: ScGPTModel, batches_from: Callable[[int], Iterable[Batch]],
          val_batches: Sequence[Batch], cfg: TrainConfig, out_dir: str | os.PathLike[str], *,
          resume: bool = False, log: Callable[[str], None] = print,
          provenance: dict[str, Any] | None = None) -> TrainResult:
    """Train ``model`` in place; the best model (by validation loss) is saved to ``out_dir``.

    ``batches_from(step)`` returns the batch stream starting at ``step`` (so a resumed run
    continues deterministically). Early stopping: after ``patience`` evaluations without a
    relative improvement of ``min_improvement``. Training state is saved at every evaluation.
    ``cfg.precision`` is resolved for the model's device first (:func:`resolve_precision`), so
    the checkpoint's provenance says what actually ran.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = dataclasses.replace(cfg, precision=resolve_precision(cfg.precision, model.device))
    opt = make_optimizer(model, cfg)
    mask_gen = torch.Generator().manual_seed(cfg.seed)
    step, best_val, best_step, since_best = 0, math.inf, -1, 0
    history: list[dict[str, float]] = []
    if resume:
        meta = load_train_state(out, model, opt, mask_gen)
        step, best_val, best_step = meta["step"], meta["best_val"], meta["best_step"]
        since_best, history = meta["since_best"], meta["history"]
        log(f"resumed at step {step} (best val {best_val:.4f} at step {best_step})")
    else:
        torch.manual_seed(cfg.seed)
    pad_id = model.config.arch.pad_id
    rng = np.random.default_rng([cfg.seed, step])
    stopped_early = False

    def evaluate_and_save() -> bool:
        nonlocal best_val, best_step, since_best
        metrics = validation_loss(model, val_batches, cfg)
        val = metrics["val_masked_mse"] + cfg.unmasked_weight * metrics["val_unmasked_mse"]
        record = {"step": step, "val_loss": val, **metrics}
        history.append(record)
        improved = val < best_val * (1 - cfg.min_improvement)
        if val < best_val:
            best_val, best_step = val, step
            _save_best(model, out, cfg, history, best_val, best_step, provenance)
        since_best = 0 if improved else since_best + 1
        log(f"eval step {step}: val {val:.4f} (masked {metrics['val_masked_mse']:.4f}, "
            f"unmasked {metrics['val_unmasked_mse']:.4f}) best {best_val:.4f}@{best_step}")
        save_train_state(out, model, opt, mask_gen,
                         {"step": step, "best_val": best_val, "best_step": best_step,
                          "since_best": since_best, "history": history,
                          "train_config": _cfg_json(cfg)})
        return since_best >= cfg.patience

    if step == 0 and not resume:
        evaluate_and_save()
    model.train()
    t0, window = time.perf_counter(), []
    # the ETA of the step lines: rolling rate after warm-up (evaluations included)
    eta = Progress(cfg.steps - step, unit="steps", every_s=float("inf"), log=lambda _l: None)
    stream = prefetched(batches_from(step))
    while step < cfg.steps:
        ids, vals = as_tensors(next(stream), model.device)
        ratio = float(cfg.mask_ratios[int(rng.integers(len(cfg.mask_ratios)))])
        mask = choose_mask(ids, pad_id, ratio, mask_gen)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        with autocast_for(model.device, cfg.precision):
            loss, m, u = reconstruction_loss(model, ids, vals, mask, cfg.unmasked_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        eta.update()
        window.append((float(loss.detach()), m, u))
        if step % cfg.log_every == 0 or step == cfg.steps:
            w = np.asarray(window)
            rate = len(window) / max(time.perf_counter() - t0, 1e-9)
            log(f"step {step}/{cfg.steps} loss {w[:, 0].mean():.4f} (masked {w[:, 1].mean():.4f},"
                f" unmasked {w[:, 2].mean():.4f}) lr {lr_at(step - 1, cfg):.2e} "
                f"len {ids.shape[1]} {rate:.2f} steps/s, ETA {_eta_text(eta)}")
            t0, window = time.perf_counter(), []
        if step % cfg.eval_every == 0 or step == cfg.steps:
            model.eval()
            if evaluate_and_save():
                stopped_early = True
                log(f"early stop at step {step}: no {cfg.min_improvement:.1%} improvement in "
                    f"{cfg.patience} evaluations")
                break
            model.train()
    stream.close()  # stops the prefetch thread (early stop leaves batches unconsumed)
    model.eval()
    return TrainResult(step=step, best_val=best_val, best_step=best_step,
                       stopped_early=stopped_early, history=history)


def _cfg_json(cfg: TrainConfig) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    d["mask_ratios"] = list(d["mask_ratios"])
    return d


def _save_best(model: ScGPTModel, out: Path, cfg: TrainConfig, history: list[dict[str, float]],
               best_val: float, best_step: int, provenance: dict[str, Any] | None) -> None:
    prov = dict(model.config.provenance)
    prov.update(provenance or {})
    prov["training"] = {"train_config": _cfg_json(cfg), "best_val_loss": best_val,
                        "best_step": best_step, "history": list(history),
                        "torch": torch.__version__}
    model.config = dataclasses.replace(model.config, provenance=prov)
    save_model(model, out)
