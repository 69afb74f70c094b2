"""Running a frozen model over many virtual cells: chunking, precision, and the three AD modes.

Every probe reduces to one of four batched primitives over a fixed context:

- ``forward``: reconstructions of many cells (VVP, finite differences, knockout baseline);
- ``jvp``: for many cells, the derivative of every output along one input coordinate each
  (forward-mode AD; GDT source reading);
- ``jacobian_rows`` / ``jacobian_cols``: many rows (reverse mode) or columns (forward mode) of the
  Jacobian at *one* cell, sharing that cell's forward pass and batching only the backward/tangent
  work with ``vmap`` (GDT uniform reading).

The runner freezes the model for the duration (eval mode: dropout off; parameters stop requiring
grad so autograd saves nothing for weight gradients), sizes chunks from a memory budget, and
returns outputs in fp32 (fp64 when the model itself is fp64) whatever the compute precision.
Batch rows must be independent in the model (true of transformers in eval mode); that is what lets
one batched forward stand for many single-cell forwards.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Literal

import torch
import torch.autograd.forward_ad as fwAD

from atlasgrn.errors import AtlasgrnError
from atlasgrn.models.interface import ArchConfig, GeneModel
from atlasgrn.models.precision import full_precision

Mode = Literal["forward", "jvp", "backward", "vmap"]
#: Compute precision of a probe: fp32 (the default, and the only one VVP gets in the engine),
#: bf16 or fp16 autocast, or TF32 matmuls (CUDA only); docs/probes.md compares them with fp32.
Precision = Literal["fp32", "bf16", "fp16", "tf32"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16", "tf32")
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

DEFAULT_CPU_BUDGET_BYTES = 1 << 30  # 1 GiB of activations per chunk on CPU
CUDA_BUDGET_FRACTION = 0.5           # of the free device memory when no budget is given
# Largest chunk on CPU per mode: bigger chunks only lose cache locality. Measured on 2 cores at
# d=512, 12 layers, 128 tokens: AD chunks of 8-16 cells ran 10-25% faster than 32-64.
MAX_CPU_BATCH = {"forward": 64, "jvp": 16, "backward": 16, "vmap": 16}


def model_device_dtype(model: GeneModel) -> tuple[torch.device, torch.dtype]:
    """Where the model's parameters live and their (floating) dtype; CPU/fp32 for parameterless."""
    for p in model.parameters():
        return p.device, (p.dtype if p.is_floating_point() else torch.float32)
    return torch.device("cpu"), torch.float32


def cell_bytes(arch: ArchConfig, length: int, mode: Mode, elem_bytes: int) -> int:
    """A deliberately generous estimate of the memory one virtual cell costs in ``mode``.

    Per layer and token an encoder layer holds ~12 d-vectors (qkv, attention out, residuals,
    norms) plus 2 feed-forward vectors, and per head an L x L score and probability matrix.
    A forward keeps one layer alive at a time; forward-mode AD doubles it (primal + tangent,
    plus the explicit attention matrices); a backward keeps every layer's activations; a vmapped
    backward/tangent row needs one layer's worth of transient gradients.
    """
    per_token = 12 * arch.d_model + 2 * arch.d_ff
    per_layer = length * per_token + 3 * arch.n_heads * length * length
    factor = {"forward": 2, "jvp": 6, "backward": 2 * max(arch.n_layers, 1) + 2, "vmap": 4}[mode]
    return int(per_layer * factor * elem_bytes)


class ProbeRunner(AbstractContextManager["ProbeRunner"]):
    """Batched, chunked evaluation of one model on cells over one or several fixed contexts.

    ``contexts`` is one context ``[L]`` or a stack of equal-length contexts ``[B, L]`` (the blocks
    of one batch, :mod:`atlasgrn.probes.stack`). Every cell row names the context it is fed with
    (``row_ctx``; context 0 when omitted), so cells of different blocks share one model call:
    on an accelerator that is what keeps the device busy instead of waiting on kernel launches.
    """

    def __init__(self, model: GeneModel, contexts: torch.Tensor, *,
                 max_batch: int | None = None, memory_budget_bytes: int | None = None,
                 precision: Precision = "fp32") -> None:
        self.model = model
        self.device, self.dtype = model_device_dtype(model)
        self.out_dtype = torch.float64 if self.dtype == torch.float64 else torch.float32
        stacked = contexts if contexts.dim() == 2 else contexts[None]
        self.ids = stacked.to(self.device)          # [B, L]
        self.length = int(stacked.shape[1])
        if max_batch is not None and max_batch < 1:
            raise AtlasgrnError(f"max_batch must be >= 1, got {max_batch}", key="max_batch",
                                remedy="pass a positive batch size or leave it unset")
        self.max_batch = max_batch
        if memory_budget_bytes is None:
            memory_budget_bytes = self._default_budget()
        self.budget = int(memory_budget_bytes)
        check_precision(precision, self.device)
        self.precision = precision
        self._stack = ExitStack()

    def _default_budget(self) -> int:
        if self.device.type == "cuda":
            free, _total = torch.cuda.mem_get_info(self.device)
            return int(free * CUDA_BUDGET_FRACTION)
        return DEFAULT_CPU_BUDGET_BYTES

    # -- freezing ---------------------------------------------------------------------------
    def __enter__(self) -> ProbeRunner:
        self._stack.enter_context(frozen(self.model))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    # -- sizing -----------------------------------------------------------------------------
    def batch_size(self, mode: Mode) -> int:
        """Cells per chunk in ``mode``: ``max_batch`` if given, else what fits the budget."""
        if self.max_batch is not None:
            return self.max_batch
        arch = self.model.config.arch
        elem = 2 if self.precision in _AUTOCAST_DTYPES else torch.finfo(self.dtype).bits // 8
        fit = max(1, self.budget // max(1, cell_bytes(arch, self.length, mode, elem)))
        return fit if self.device.type == "cuda" else min(fit, MAX_CPU_BATCH[mode])

    def chunks(self, n: int, mode: Mode) -> Iterator[tuple[int, int]]:
        step = self.batch_size(mode)
        for start in range(0, n, step):
            yield start, min(n, start + step)

    # -- model calls ------------------------------------------------------------------------
    def _precision(self) -> AbstractContextManager[object]:
        stack = ExitStack()
        # fp32 unless asked: VVP features are differences bf16 cannot resolve (models/precision)
        stack.enter_context(full_precision())
        if self.precision in _AUTOCAST_DTYPES:
            stack.enter_context(torch.autocast(device_type=self.device.type,
                                               dtype=_AUTOCAST_DTYPES[self.precision]))
        elif self.precision == "tf32":
            stack.enter_context(_tf32_matmuls())
        return stack

    def _ids(self, n: int, row_ctx: torch.Tensor | None) -> torch.Tensor:
        if row_ctx is None:
            return self.ids[:1].expand(n, -1)
        return self.ids[row_ctx.to(self.device)]

    def call(self, values: torch.Tensor, row_ctx: torch.Tensor | None = None) -> torch.Tensor:
        """Model output for a batch of cells ``[B, L]``, row ``r`` over context ``row_ctx[r]``."""
        with self._precision():
            return self.model(self._ids(values.shape[0], row_ctx), values)

    def _keep_rows(self, keep: torch.Tensor, row_ctx: torch.Tensor | None, a: int,
                   b: int) -> torch.Tensor:
        """Per row of the chunk ``[a, b)``, the output positions to keep: ``[b - a, T]``."""
        per_ctx = keep if keep.dim() == 2 else keep[None]
        rows = per_ctx[row_ctx[a:b]] if row_ctx is not None else per_ctx[:1].expand(b - a, -1)
        return rows.to(self.device)

    def forward(self, make_values: Callable[[int, int], torch.Tensor], n: int,
                keep: torch.Tensor, row_ctx: torch.Tensor | None = None) -> torch.Tensor:
        """Outputs at positions ``keep`` of ``n`` cells built chunk by chunk: ``[n, T]``.

        ``keep`` is ``[T]`` (the same positions for every context) or ``[B, T]`` (per context).
        """
        out = torch.empty(n, keep.shape[-1], dtype=self.out_dtype)
        with torch.no_grad():
            for a, b in self.chunks(n, "forward"):
                ctx = row_ctx[a:b] if row_ctx is not None else None
                res = self.call(make_values(a, b).to(self.device, self.dtype), ctx)
                out[a:b] = res.gather(1, self._keep_rows(keep, row_ctx, a, b)).to(
                    self.out_dtype).cpu()
        return out

    def jvp(self, make_values: Callable[[int, int], torch.Tensor], tangent_pos: torch.Tensor,
            keep: torch.Tensor, row_ctx: torch.Tensor | None = None) -> torch.Tensor:
        """Row ``r``: d out[r, keep] / d v[r, tangent_pos[r]] at cell ``r`` (forward-mode AD)."""
        n = int(tangent_pos.numel())
        out = torch.empty(n, keep.shape[-1], dtype=self.out_dtype)
        with self.model.attention_impl("math"):
            for a, b in self.chunks(n, "jvp"):
                values = make_values(a, b).to(self.device, self.dtype)
                tangent = torch.zeros_like(values)
                rows = torch.arange(b - a, device=self.device)
                tangent[rows, tangent_pos[a:b].to(self.device)] = 1.0
                ctx = row_ctx[a:b] if row_ctx is not None else None
                with fwAD.dual_level(), _quiet_torch_jit_deprecation():
                    dual_out = self.call(fwAD.make_dual(values, tangent), ctx)
                    dout = fwAD.unpack_dual(dual_out).tangent
                if dout is None:  # the output does not depend on the values at all
                    dout = torch.zeros_like(values)
                out[a:b] = dout.gather(1, self._keep_rows(keep, row_ctx, a, b)).to(
                    self.out_dtype).cpu()
        return out

    def _point_chunks(self, n_points: int, hold: Mode,
                      recompute_for: int | None = None) -> Iterator[tuple[int, int, int]]:
        """Chunks of points and, for each, how many vmapped rows/columns go in one call.

        A chunk's primal pass (kept alive in ``hold`` mode) and each vmapped call (``points x
        rows`` cells) both stay within a chunk's worth of cells; on CUDA, where the chunk is
        sized from memory rather than capped, each gets half the budget since both are alive.
        ``recompute_for``: when every vmapped call recomputes the primal (forward-mode columns),
        take as few points as fill a call with that many columns, so the primal stays a small
        share of each call (16 points x 1 column per call ran 1.3x slower than 1 x 16 on CPU).
        """
        cells, held = self.batch_size("vmap"), self.batch_size(hold)
        if self.device.type == "cuda" and self.max_batch is None:
            cells, held = max(1, cells // 2), max(1, held // 2)
        per = min(n_points, cells, held)
        if recompute_for:
            per = min(per, max(1, -(-cells // recompute_for)))
        for start in range(0, n_points, per):
            stop = min(n_points, start + per)
            yield start, stop, max(1, cells // (stop - start))

    def jacobian_rows(self, points: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
                      point_ctx: torch.Tensor | None = None) -> torch.Tensor:
        """``J_p[rows_p][:, cols_p]`` at each point ``p``: ``[P, R, C]``, ``J[j, i] = d out_j /
        d v_i``. ``points`` is ``[P, L]`` (or one point ``[L]``); ``rows``/``cols`` are ``[R]``
        and ``[C]``, or per point ``[P, R]`` and ``[P, C]``.

        One forward at the points, then the backward for a chunk of output rows at every point
        at once (vmapped cotangents; rows are independent in the model). The explicit attention
        path is used because the fused kernel's backward has no batching rule.
        """
        pts, rows_p, cols_p = _per_point(points, rows, cols)
        n_p, n_r = int(pts.shape[0]), int(rows_p.shape[1])
        out = torch.empty(n_p, n_r, cols_p.shape[1], dtype=self.out_dtype)
        with self.model.attention_impl("math"):
            for pa, pb, step in self._point_chunks(n_p, "backward"):
                v = pts[pa:pb].to(self.device, self.dtype).clone().requires_grad_(True)
                ctx = point_ctx[pa:pb] if point_ctx is not None else None
                with torch.enable_grad():
                    y = self.call(v, ctx)
                span = torch.arange(pb - pa, device=self.device)
                want_rows = rows_p[pa:pb].to(self.device)
                want_cols = cols_p[pa:pb].to(self.device)
                for a in range(0, n_r, step):
                    b = min(n_r, a + step)
                    cot = torch.zeros(b - a, pb - pa, self.length, device=self.device,
                                      dtype=y.dtype)
                    _one_hot_per_point(cot, span, want_rows[:, a:b])
                    (g,) = torch.autograd.grad(y, v, grad_outputs=cot, is_grads_batched=True,
                                               retain_graph=True)
                    picked = g.gather(2, want_cols[None].expand(b - a, -1, -1))
                    out[pa:pb, a:b] = picked.permute(1, 0, 2).to(self.out_dtype).cpu()
        return out

    def jacobian_cols(self, points: torch.Tensor, cols: torch.Tensor, rows: torch.Tensor,
                      point_ctx: torch.Tensor | None = None) -> torch.Tensor:
        """``J_p[rows_p][:, cols_p].T`` at each point, ``[P, C, R]``, forward mode (shapes as in
        :meth:`jacobian_rows`). The primal is computed once per chunk of points (unbatched under
        vmap); only the tangents are batched."""
        pts, rows_p, cols_p = _per_point(points, rows, cols)
        n_p, n_c = int(pts.shape[0]), int(cols_p.shape[1])
        out = torch.empty(n_p, n_c, rows_p.shape[1], dtype=self.out_dtype)
        with self.model.attention_impl("math"), _quiet_torch_jit_deprecation():
            for pa, pb, step in self._point_chunks(n_p, "jvp", recompute_for=n_c):
                p = pts[pa:pb].to(self.device, self.dtype)
                ctx = point_ctx[pa:pb] if point_ctx is not None else None
                span = torch.arange(pb - pa, device=self.device)
                want_rows = rows_p[pa:pb].to(self.device)
                want_cols = cols_p[pa:pb].to(self.device)

                def at_points(v: torch.Tensor, ctx: torch.Tensor | None = ctx) -> torch.Tensor:
                    return self.call(v, ctx)

                def column(t: torch.Tensor, p: torch.Tensor = p) -> torch.Tensor:
                    return torch.func.jvp(at_points, (p,), (t,))[1]

                for a in range(0, n_c, step):
                    b = min(n_c, a + step)
                    tan = torch.zeros(b - a, pb - pa, self.length, device=self.device,
                                      dtype=self.dtype)
                    _one_hot_per_point(tan, span, want_cols[:, a:b])
                    d = torch.func.vmap(column)(tan)          # [c, points, L]
                    picked = d.gather(2, want_rows[None].expand(b - a, -1, -1))
                    out[pa:pb, a:b] = picked.permute(1, 0, 2).to(self.out_dtype).cpu()
        return out


def _per_point(points: torch.Tensor,
               *indices: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Points as ``[P, L]`` (one point ``[L]`` becomes ``[1, L]``) and each index as ``[P, n]``
    (a shared ``[n]`` index repeated for every point)."""
    pts = points if points.dim() == 2 else points[None]
    n_p = int(pts.shape[0])
    return (pts, *(i.expand(n_p, -1) if i.dim() == 1 else i for i in indices))


def _one_hot_per_point(out: torch.Tensor, points: torch.Tensor, index: torch.Tensor) -> None:
    """``out[c, p, index[p, c]] = 1`` for every vmapped slot ``c`` and point ``p`` (one scatter,
    not a Python loop: on an accelerator each small op is a kernel launch)."""
    slots = torch.arange(index.shape[1], device=out.device)[:, None].expand(-1, points.numel())
    out[slots, points[None].expand(index.shape[1], -1), index.T] = 1.0


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a compute precision the device cannot honour, naming the remedy."""
    if precision not in PRECISIONS:
        raise AtlasgrnError(f"unknown probe precision {precision!r}", key="precision",
                            remedy=f"use one of {', '.join(PRECISIONS)}")
    if precision == "tf32" and device.type != "cuda":
        raise AtlasgrnError("TF32 matmuls exist only on CUDA devices", key="precision",
                            remedy="use fp32 (or bf16) on CPU")


@contextmanager
def _tf32_matmuls() -> Iterator[None]:
    """TF32 tensor-core matmuls inside the block, the previous setting after it."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


@contextmanager
def _quiet_torch_jit_deprecation() -> Iterator[None]:
    """torch.func.jvp's first use imports torch-internal decompositions built with the deprecated
    ``torch.jit.script``; that warning is about torch's code, not ours."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated",
                                category=DeprecationWarning)
        yield


@contextmanager
def frozen(model: GeneModel) -> Iterator[None]:
    """Eval mode and no parameter gradients inside the block; the previous state after it."""
    module = model if isinstance(model, torch.nn.Module) else None
    was_training = module.training if module is not None else False
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    try:
        if module is not None:
            module.eval()
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
        if module is not None and was_training:
            module.train()
