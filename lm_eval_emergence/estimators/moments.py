"""Second moments of paired samples, accumulated batch by batch: all a closed form needs.

A closed-form estimator (`gaussian-floor`) reads only the joint covariance of (x, y), and for its
jackknife the covariance with each fold of rows left out. Those come from per-fold counts, sums
and cross-products, so `PairMoments` holds O(folds x pairs x D^2) numbers whatever the number of
samples: the states of each batch are added where they were computed (the GPU, during the
forward pass) and dropped. Two accumulators of disjoint rows (two ranks) merge by addition.

Numerics: rows are shifted by a fixed per-pair reference (the first rows' mean) before their
products, which are computed in float64 (float32 only where the device has no float64), so
(Q - s s^T / n) / (n - 1) loses nothing to the large means that residual streams carry. What is
kept between batches can be `packed` (what a capture streams into): each fold's cross-products
as the upper triangle of the symmetric matrix, half the numbers, the same ones (issue 35: the
moments a run holds until its tasks are estimated). They stay float64: accumulated in float32, a
64 + 64-wide Gaussian MI with a variance spread of 1e3 moved by bits, not by rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "DEFAULT_FOLDS",
    "PairMoments",
    "jackknife_bias_corrected",
    "jackknife_fold_count",
    "jackknife_fold_ids",
    "jackknife_stderr",
    "moments_of_samples",
]

#: Jackknife folds of the fold-based estimators' stderr and bias correction, and of anything
#: computed beside an estimate whose estimator has no folds (the spectral baselines).
DEFAULT_FOLDS = 10
#: The products of one `add` are built in chunks of at most this many numbers (bounds memory).
_CHUNK_NUMBERS = 1 << 25


def jackknife_fold_ids(n: int, folds: int, seed: int) -> torch.Tensor:
    """The jackknife fold of each of `n` rows: the chunks of a seeded permutation, [n] int64.

    The same rule for samples held in memory and for rows streamed by their index (a document's
    index in its task), so both give the same folds and the same standard error.
    """
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 4))
    ids = torch.empty(n, dtype=torch.long)
    ids[order] = torch.arange(n) // _fold_size(n, folds)
    return ids


def jackknife_fold_count(n: int, folds: int) -> int:
    """The folds `jackknife_fold_ids` fills with `n` rows (fewer than `folds` when the rows,
    cut in equal chunks, do not reach them all), known without drawing the permutation."""
    return math.ceil(n / _fold_size(n, folds))


def _fold_size(n: int, folds: int) -> int:
    """Rows per fold: `n` cut into at most `folds` chunks of equal size, the last one shorter."""
    return math.ceil(n / min(folds, n))


def jackknife_stderr(left_out: torch.Tensor) -> torch.Tensor:
    """Delete-a-group jackknife standard error from the G estimates with one group left out each
    ([G, ...]): sqrt((G - 1) / G * sum (v_g - mean v)^2)."""
    g = left_out.shape[0]
    return ((g - 1) / g * ((left_out - left_out.mean(0)) ** 2).sum(0)).sqrt()


def jackknife_bias_corrected(values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The delete-a-group jackknife's bias-corrected value from `values` [1 + G, ...] (all rows,
    then each group left out) on `rows` [1 + G] rows each.

    A bias c / n is fitted to how the left-out values move with their row counts (least squares
    in 1 / n) and removed from the value on all rows; with equal groups this is the classical
    G * v - (G - 1) * mean(v_-g). Removes the 1 / n term of the bias, not higher orders.
    """
    full, left_out = values[0], values[1:]
    rows = rows.to(values.dtype)
    a = (1.0 / rows[1:] - 1.0 / rows[0]).reshape(-1, *([1] * (values.dim() - 1)))
    c = (a * (left_out - full)).sum(0) / (a * a).sum(0)
    return full - c / rows[0]


def _accumulator_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


@dataclass(eq=False)
class PairMoments:
    """Per-fold counts, sums and cross-products of joint rows z = [x, y] for a stack of pairs.

    `sums` and `cross` are of z - `shift`; `varies_x` / `varies_y` say whether a side differed
    from the first row anywhere (a side that never does is constant: its MI is exactly 0).
    """

    dx: int
    dy: int
    count: torch.Tensor  # [F] rows per fold
    sums: torch.Tensor  # [F, P, D]
    cross: torch.Tensor  # [F, P, D, D]; packed: [F, P, D (D + 1) / 2], the upper triangle
    shift: torch.Tensor | None = None  # [P, D]
    first: torch.Tensor | None = None  # [P, D]
    varies_x: torch.Tensor | None = None  # [P] bool
    varies_y: torch.Tensor | None = None  # [P] bool

    @classmethod
    def empty(
        cls,
        folds: int,
        pairs: int,
        dx: int,
        dy: int,
        device: torch.device | str = "cpu",
        *,
        packed: bool = False,
    ) -> PairMoments:
        """An accumulator for `pairs` pairs of widths (dx, dy), with `folds` jackknife folds;
        `packed` keeps the cross-products as upper triangles (see the module)."""
        device = torch.device(device)
        dtype = _accumulator_dtype(device)
        d = dx + dy
        cross = (
            torch.zeros(folds, pairs, d * (d + 1) // 2, dtype=dtype, device=device)
            if packed
            else torch.zeros(folds, pairs, d, d, dtype=dtype, device=device)
        )
        return cls(
            dx=dx,
            dy=dy,
            count=torch.zeros(folds, dtype=dtype, device=device),
            sums=torch.zeros(folds, pairs, d, dtype=dtype, device=device),
            cross=cross,
        )

    @property
    def packed(self) -> bool:
        """Whether the cross-products are kept as upper triangles (`empty(packed=True)`)."""
        return self.cross.dim() == 3

    def _full_cross(self, cross: torch.Tensor) -> torch.Tensor:
        """`cross` ([..., P, D, D], or packed [..., P, D (D + 1) / 2]) as full float64 CPU
        matrices."""
        cross = cross.to("cpu", torch.float64)
        if cross.dim() == self.sums.dim() + 1:
            return cross
        d = self.dx + self.dy
        rows, cols = _triangle(d, cross.device)
        full = cross.new_zeros((*cross.shape[:-1], d, d))
        full[..., rows, cols] = cross
        full[..., cols, rows] = cross
        return full

    @property
    def n_folds(self) -> int:
        return self.count.shape[0]

    @property
    def n_pairs(self) -> int:
        return self.sums.shape[1]

    @property
    def n(self) -> int:
        """Rows added (a weighted row counts its weight)."""
        return round(float(self.count.sum()))

    def add_rows(self, x: torch.Tensor, y: torch.Tensor, folds: torch.Tensor) -> None:
        """Add rows x [P, B, dx] and y [P, B, dy], row b in fold `folds[b]` (each row's
        products go to its own fold only: B * D^2 multiply-adds a pair, whatever the folds)."""
        z = self._shifted(x, y, torch.ones(x.shape[1], dtype=self.sums.dtype))
        if z is None:
            return
        folds = folds.to(z.device)
        self.count.index_add_(0, folds, torch.ones_like(folds, dtype=self.count.dtype))
        self.sums.index_add_(0, folds, z.transpose(0, 1))
        sizes = torch.bincount(folds, minlength=self.n_folds).tolist()
        parts = torch.split(z[:, torch.argsort(folds, stable=True)], sizes, dim=1)
        for fold, part in enumerate(parts):  # [P, b, D], the rows of one fold
            if part.shape[1]:
                self.cross[fold].add_(self._kept(part.mT @ part))

    def _kept(self, products: torch.Tensor) -> torch.Tensor:
        """Full cross-products [..., D, D] in the form this accumulator keeps them."""
        if not self.packed:
            return products
        rows, cols = _triangle(products.shape[-1], products.device)
        return products[..., rows, cols].to(self.cross.dtype)

    def _shifted(
        self, x: torch.Tensor, y: torch.Tensor, total: torch.Tensor
    ) -> torch.Tensor | None:
        """Rows z = [x, y] [P, B, D] in the accumulator's dtype, minus the fixed shift (set from
        the first rows, weighted by `total` [B]); the constant flags updated. None: no rows."""
        if x.shape[-1] != self.dx or y.shape[-1] != self.dy or x.shape[:2] != y.shape[:2]:
            raise ValueError(
                f"expected x [P, B, {self.dx}] and y [P, B, {self.dy}], got {tuple(x.shape)} "
                f"and {tuple(y.shape)}"
            )
        if x.shape[1] == 0:
            return None
        device = self.sums.device
        z = torch.cat([x, y], dim=-1).to(device, self.sums.dtype)
        if self.shift is None:
            total = total.to(device, z.dtype)
            self.shift = (z * total[None, :, None]).sum(1) / total.sum()
            self.first = z[:, 0].clone()
            self.varies_x = torch.zeros(z.shape[0], dtype=torch.bool, device=device)
            self.varies_y = torch.zeros(z.shape[0], dtype=torch.bool, device=device)
        same = z == self.first[:, None]  # type: ignore[index]
        self.varies_x |= ~same[..., : self.dx].flatten(1).all(-1)
        self.varies_y |= ~same[..., self.dx :].flatten(1).all(-1)
        return z - self.shift[:, None]

    def add_weighted(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> None:
        """Add rows x [P, B, dx], y [P, B, dy], each counted `weights[f, b]` times in fold f
        (distinct rows with their counts: the micro states of the distinct tokens)."""
        w = weights.to(self.sums.device, self.sums.dtype)
        used = w.sum(0) > 0
        if not bool(used.all()):
            x, y, w = x[:, used.to(x.device)], y[:, used.to(y.device)], w[:, used]
        z = self._shifted(x, y, w.sum(0))
        if z is None:
            return
        self.count += w.sum(1)
        self.sums += torch.einsum("fb,pbd->fpd", w, z)
        folds, pairs, rows, width = w.shape[0], z.shape[0], z.shape[1], z.shape[2]
        step = max(1, _CHUNK_NUMBERS // (folds * pairs * width))
        for start in range(0, rows, step):
            part = z[:, start : start + step]  # [P, b, D]
            weighted = w[:, None, start : start + step, None] * part[None]  # [F, P, b, D]
            self.cross += self._kept(weighted.transpose(-1, -2) @ part[None])

    def merged(self, others: Sequence[PairMoments]) -> PairMoments:
        """The moments of this accumulator's rows and those of `others` (disjoint rows), on the
        CPU, packed as this one is."""
        if not others and self.sums.dtype == torch.float64:  # one part: a copy on the CPU
            return self.to("cpu")
        out = PairMoments.empty(
            self.n_folds, self.n_pairs, self.dx, self.dy, "cpu", packed=self.packed
        )
        for part in [self, *others]:
            if (part.n_folds, part.n_pairs, part.dx, part.dy) != (
                out.n_folds,
                out.n_pairs,
                out.dx,
                out.dy,
            ):
                raise ValueError("moments of different shapes cannot be merged")
            if part.shift is None:
                continue
            shift = part.shift.to("cpu", out.sums.dtype)
            if out.shift is None:
                out.shift = shift.clone()
                out.first = part.first.to("cpu", out.sums.dtype)  # type: ignore[union-attr]
                out.varies_x = part.varies_x.cpu().clone()  # type: ignore[union-attr]
                out.varies_y = part.varies_y.cpu().clone()  # type: ignore[union-attr]
            else:
                first = part.first.to("cpu", out.sums.dtype)  # type: ignore[union-attr]
                differs = first != out.first
                out.varies_x |= part.varies_x.cpu() | differs[:, : out.dx].any(-1)
                out.varies_y |= part.varies_y.cpu() | differs[:, out.dx :].any(-1)
            # re-centre the part on the common shift: z - b = (z - a) + (a - b)
            delta = shift - out.shift  # [P, D]
            count = part.count.to("cpu", out.sums.dtype)
            sums = part.sums.to("cpu", out.sums.dtype)
            out.count += count
            out.sums += sums + count[:, None, None] * delta
            recentred = (
                part._full_cross(part.cross)
                + sums[..., :, None] * delta[None, :, None, :]
                + delta[None, :, :, None] * sums[..., None, :]
                + count[:, None, None, None] * delta[:, :, None] * delta[:, None, :]
            )
            out.cross += out._kept(recentred)
        return out

    def constant(self) -> torch.Tensor:
        """[P] bool: a side of the pair was the same in every row (its MI is exactly 0)."""
        if self.varies_x is None or self.varies_y is None:
            raise ValueError("no rows were added to these moments")
        return ~(self.varies_x & self.varies_y).cpu()

    def _left_out(self, name: str) -> torch.Tensor:
        """`count`, `sums` or `cross` (float64, CPU) summed over all rows, then over the rows
        of every fold but one, for each fold with rows: [1 + F', ...]."""
        per_fold = getattr(self, name)
        per_fold = (
            self._full_cross(per_fold) if name == "cross" else per_fold.to("cpu", torch.float64)
        )
        kept = per_fold[self.count.cpu() > 0]
        out = torch.empty((1 + len(kept), *per_fold.shape[1:]), dtype=torch.float64)
        torch.sum(per_fold, 0, out=out[0])
        torch.sub(out[0].expand_as(kept), kept, out=out[1:])
        return out

    def row_counts(self) -> torch.Tensor:
        """Rows behind each entry of `covariances` and `means`: [1 + F'] float64."""
        return self._left_out("count")

    def covariances(self) -> torch.Tensor:
        """Sample covariances (float64) with all rows and with each fold left out: [1 + F, P, D, D]
        (folds without rows are skipped)."""
        n = self.row_counts()
        if n[0] < 2:
            raise ValueError(f"{float(n[0]):g} rows cannot give a covariance")
        return _covariance(n[:, None, None, None], self._left_out("sums"), self._left_out("cross"))

    def means(self) -> torch.Tensor:
        """Row means (float64) with all rows and with each fold left out: [1 + F, P, D], in the
        order of `covariances` (folds without rows are skipped)."""
        if self.shift is None:
            raise ValueError("no rows were added to these moments")
        shift = self.shift.to("cpu", torch.float64)
        return shift + self._left_out("sums") / self.row_counts()[:, None, None]

    def grouped_folds(self, groups: Sequence[Sequence[int]]) -> PairMoments:
        """The moments of the rows of the folds in `groups`, each group one fold (folds counted
        among those that hold rows; a fold in no group is dropped): the N/2 check reads each
        half of the folds, and the whole with pairs of folds left out, from the same moments."""
        held = torch.nonzero(self.count.cpu() > 0).flatten().tolist()
        pick = lambda t: torch.stack(  # noqa: E731
            [t.index_select(0, torch.tensor([held[i] for i in g], device=t.device)).sum(0)
             for g in groups]
        )  # fmt: skip
        return PairMoments(
            dx=self.dx,
            dy=self.dy,
            count=pick(self.count),
            sums=pick(self.sums),
            cross=pick(self.cross),
            shift=self.shift,
            first=self.first,
            varies_x=self.varies_x,
            varies_y=self.varies_y,
        )

    def select(self, pairs: Sequence[int]) -> PairMoments:
        """The moments of the pairs `pairs` only."""
        index = torch.tensor(list(pairs), dtype=torch.long, device=self.sums.device)
        pick = lambda t: None if t is None else t.index_select(0, index)  # noqa: E731
        return PairMoments(
            dx=self.dx,
            dy=self.dy,
            count=self.count,
            sums=self.sums.index_select(1, index),
            cross=self.cross.index_select(1, index),
            shift=pick(self.shift),
            first=pick(self.first),
            varies_x=pick(self.varies_x),
            varies_y=pick(self.varies_y),
        )

    def to(self, device: torch.device | str) -> PairMoments:
        """A copy on `device` (the CPU before pickling, so a GPU-less rank 0 can read it)."""
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return PairMoments(
            self.dx,
            self.dy,
            self.count.to(device),
            self.sums.to(device),
            self.cross.to(device),
            move(self.shift),
            move(self.first),
            move(self.varies_x),
            move(self.varies_y),
        )

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.count, self.sums, self.cross))

    def __repr__(self) -> str:
        return (
            f"PairMoments(pairs={self.n_pairs}, dx={self.dx}, dy={self.dy}, folds={self.n_folds}, "
            f"n={self.n})"
        )


_TRIANGLES: dict[tuple[int, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}


def _triangle(d: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices of the upper triangle of a d x d matrix (diagonal included)."""
    key = (d, torch.device(device))
    if key not in _TRIANGLES:
        rows, cols = torch.triu_indices(d, d, device=device)
        _TRIANGLES[key] = (rows, cols)
    return _TRIANGLES[key]


def _covariance(n: torch.Tensor, sums: torch.Tensor, cross: torch.Tensor) -> torch.Tensor:
    """(cross - sums sums^T / n) / (n - 1), written into `cross` (the caller's fresh tensor)."""
    cross.sub_((sums / n[..., 0])[..., :, None] * sums[..., None, :])
    return cross.div_(n - 1)


def moments_of_samples(x: torch.Tensor, y: torch.Tensor, folds: int, seed: int) -> PairMoments:
    """The moments of a [P, n, dx], [P, n, dy] stack in memory (folds: `jackknife_fold_ids`)."""
    n = x.shape[1]
    ids = jackknife_fold_ids(n, folds, seed)
    moments = PairMoments.empty(
        jackknife_fold_count(n, folds), x.shape[0], x.shape[-1], y.shape[-1]
    )
    moments.add_rows(x, y, ids)
    return moments
