"""Differentially private training (DP-SGD) for the one training loop.

A private fit samples each batch by Poisson sampling (every sequence joins a step's batch with
probability ``batch_size / n``), takes every sequence's own gradient, clips it to
``max_grad_norm``, adds Gaussian noise to their sum and steps on that (Abadi et al., CCS 2016).
opacus supplies the noisy optimiser (``DPOptimizer``: clipping, noise, averaging by the expected
batch size) and the Rényi DP analysis (Mironov 2017) of the subsampled Gaussian mechanism that
calibrates the noise to the budget and gives the epsilon spent; a fit that also releases noisy
statistics of the whole data (a private k-means) composes them in the same analysis.

The per-sequence gradients are taken here, by hooks on the modules that read the private data:
``nn.Linear`` layers; the fused recurrent layers through
:class:`ursa.networks.recurrent.PerSampleRecurrent`, which keeps torch's fused kernels (opacus'
own DPLSTM/DPGRU layers loop over time steps in Python, several times slower); and modules that
name the parameters they report themselves in ``per_sample_parameters`` (calling
``record_sample(parameter, gradients)``, e.g. a clusterer's centres).

The unit of privacy is one training sequence (a window, for a detector fitted on one long
series: a step lies in up to ``window`` windows).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass
from numbers import Real

import torch
from torch import nn

from ..networks.recurrent import PerSampleRecurrent

__all__ = ["PrivacyBudget", "PrivacyBudgetExceeded", "PrivateUpdates", "privacy_budget"]

_KEYS = ("epsilon", "delta", "max_grad_norm", "data_bound")


# A fit that also releases noisy statistics (a private k-means) gives them this share of epsilon:
# a tenth left the k-means centres mostly noise (docs/privacy.md).
RELEASE_SHARE = 0.25


class PrivacyBudgetExceeded(RuntimeError):
    """A private fit would spend more than its budget (raised before the step that would)."""


@dataclass(frozen=True)
class PrivacyBudget:
    """``epsilon`` and ``delta`` of (epsilon, delta)-differential privacy for each training
    sequence; ``max_grad_norm`` bounds one sequence's gradient (its clipping norm). ``delta``
    None means 1 / n_sequences at fit time. ``data_bound``, the largest magnitude a value of
    the (scaled) data can take, known without reading it, lets a fit release noisy statistics
    of the values themselves (values beyond it are clipped to it; RecurrentGAN's TimeGAN uses it
    for its moment term, the other estimators release none); None: none are released."""

    epsilon: float
    delta: float | None = None
    max_grad_norm: float = 1.0
    data_bound: float | None = None

    def delta_for(self, n_sequences: int) -> float:
        return self.delta if self.delta is not None else 1.0 / n_sequences


def privacy_budget(value, name: str = "privacy") -> PrivacyBudget | None:
    """The ``privacy`` parameter as a :class:`PrivacyBudget` (None: no privacy), or a clear error."""
    if value is None:
        return None
    if isinstance(value, PrivacyBudget):
        value = asdict(value)
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be None or a dict such as {{'epsilon': 3.0, 'delta': 1e-5, "
                        f"'max_grad_norm': 1.0}}, got {type(value).__name__}")
    unknown = sorted(set(value) - set(_KEYS))
    if unknown:
        raise ValueError(f"{name} has unknown keys {unknown}: the keys are {list(_KEYS)}")
    if "epsilon" not in value:
        raise ValueError(f"{name} needs 'epsilon', the privacy budget (e.g. {{'epsilon': 3.0}})")
    checks = {"epsilon": (False, None), "delta": (True, 1.0), "max_grad_norm": (True, None),
              "data_bound": (True, None)}
    for key, (optional, below) in checks.items():
        item = value.get(key)
        if item is None and optional:
            continue
        if isinstance(item, bool) or not isinstance(item, Real) or not math.isfinite(item) \
                or item <= 0 or (below is not None and item >= below):
            bound = f"in (0, {below})" if below is not None else "a finite number > 0"
            raise ValueError(f"{name}[{key!r}] must be {bound}, got {item!r}")
    return PrivacyBudget(float(value["epsilon"]),
                         None if value.get("delta") is None else float(value["delta"]),
                         float(value.get("max_grad_norm") or 1.0),
                         None if value.get("data_bound") is None else float(value["data_bound"]))


def _opacus():
    try:
        import opacus  # noqa: F401
        from opacus.accountants.utils import get_noise_multiplier
        from opacus.optimizers import DPOptimizer
    except ImportError:  # pragma: no cover - exercised with opacus hidden
        raise ImportError(
            "privacy=... needs opacus, which is not installed: pip install 'ursa[privacy]' "
            "(or pip install opacus==1.6.0)."
        ) from None
    return get_noise_multiplier, DPOptimizer


def _accumulate(param: torch.Tensor, sample: torch.Tensor) -> None:
    if getattr(param, "grad_sample", None) is None:
        param.grad_sample = sample
    else:
        param.grad_sample = param.grad_sample + sample


def _linear_hook(module: nn.Linear, inputs, output):
    if not output.requires_grad:
        return
    activation = inputs[0].detach()

    def record(grad):
        if grad.dim() == 2:
            _accumulate(module.weight, grad[:, :, None] * activation[:, None, :])
            if module.bias is not None:
                _accumulate(module.bias, grad)
        else:
            grad3, act3 = grad.flatten(1, -2), activation.flatten(1, -2)
            _accumulate(module.weight, torch.einsum("bto,bti->boi", grad3, act3))
            if module.bias is not None:
                _accumulate(module.bias, grad3.sum(1))

    output.register_hook(record)


def _recurrent_record(module, layer, inputs, previous, input_delta, recurrent_delta):
    _accumulate(getattr(module, f"weight_ih_l{layer}"),
                torch.einsum("btg,bti->bgi", input_delta, inputs))
    _accumulate(getattr(module, f"bias_ih_l{layer}"), input_delta.sum(1))
    _accumulate(getattr(module, f"weight_hh_l{layer}"),
                torch.einsum("btg,bth->bgh", recurrent_delta, previous))
    _accumulate(getattr(module, f"bias_hh_l{layer}"), recurrent_delta.sum(1))


def _check_supported(modules) -> None:
    for module in modules:
        for name, sub in module.named_modules():
            handled = set(getattr(sub, "per_sample_parameters", ()))
            own = [n for n, p in sub.named_parameters(recurse=False)
                   if p.requires_grad and n not in handled]
            if own and not isinstance(sub, (nn.Linear, PerSampleRecurrent)):
                raise TypeError(
                    f"private training cannot take per-sequence gradients of "
                    f"{type(sub).__name__} ({name or 'the module'}): only linear and ursa's "
                    "recurrent layers are supported")
            if isinstance(sub, PerSampleRecurrent) and sub.bidirectional:
                raise TypeError("private training needs unidirectional recurrent modules "
                                "(ursa builds bidirectional stacks from them)")


def _smallest_noise(epsilon_of, target: float) -> float:
    """The smallest noise multiplier (to 0.1 %) whose ``epsilon_of(noise)`` is within ``target``."""
    low, high = 1e-2, 1e4
    if epsilon_of(high) > target:
        raise ValueError(f"no noise level keeps this fit within epsilon={target:g}: shorten it")
    while high / low > 1.001:
        middle = math.sqrt(low * high)
        low, high = (low, middle) if epsilon_of(middle) <= target else (middle, high)
    return high


class PrivateUpdates:
    """DP-SGD updates of the parameters of ``modules``, over ``steps`` steps that sample
    ``n_sequences`` sequences at rate ``sample_rate``, and ``releases`` noisy statistics of
    the whole data (:meth:`release`): the noise is calibrated at construction so that all of
    them together spend at most ``budget.epsilon`` (at ``delta``), composed in Rényi DP.

    Use :meth:`optimizer` to wrap each optimiser of private parameters and :meth:`update` for
    each step; the loop draws the batches by Poisson sampling (``run(..., sample_rate=...)``).
    Its ``state_dict`` (steps taken, releases made, noise) goes into checkpoints.
    """

    def __init__(self, budget: PrivacyBudget, modules, *, n_sequences: int, sample_rate: float,
                 steps: int, releases: int = 0, release_share: float = RELEASE_SHARE):
        get_noise_multiplier, self._DPOptimizer = _opacus()
        _check_supported(modules)
        self.budget, self.modules = budget, list(modules)
        self.n_sequences, self.sample_rate, self.steps = n_sequences, float(sample_rate), steps
        self.releases = releases
        self.delta = budget.delta_for(n_sequences)
        self.release_noise = None
        if releases and not steps:
            # Releases only (no gradient step reads the data): they take the whole budget.
            self.release_noise = _smallest_noise(
                lambda sigma: self._epsilon(0, releases, release_noise=sigma), budget.epsilon)
            self.noise_multiplier = None
        elif releases:
            # The releases alone would spend release_share of the budget; the gradient noise is
            # then set so that everything together spends at most all of it.
            self.release_noise = _smallest_noise(
                lambda sigma: self._epsilon(0, releases, release_noise=sigma),
                release_share * budget.epsilon)
            self.noise_multiplier = _smallest_noise(
                lambda sigma: self._epsilon(max(1, steps), releases, noise=sigma),
                budget.epsilon)
        else:
            self.noise_multiplier = float(get_noise_multiplier(
                target_epsilon=budget.epsilon, target_delta=self.delta,
                sample_rate=self.sample_rate, steps=max(1, steps), accountant="rdp"))
        self.taken = self.released = 0

    # ------------------------------------------------------------------ stepping
    def optimizer(self, optimizer: torch.optim.Optimizer):
        """``optimizer`` wrapped by opacus' DPOptimizer (clipping, noise, 1 / expected batch)."""
        return self._DPOptimizer(
            optimizer, noise_multiplier=self.noise_multiplier,
            max_grad_norm=self.budget.max_grad_norm,
            expected_batch_size=max(1, round(self.sample_rate * self.n_sequences)),
            loss_reduction="mean")

    @contextlib.contextmanager
    def capture(self, modules=None):
        """Record the per-sequence gradients (``param.grad_sample``) of ``modules`` (default:
        all the private modules) in the forward and backward passes run inside."""
        modules = self.modules if modules is None else list(modules)
        handles = []
        for module in modules:
            for sub in module.modules():
                if isinstance(sub, nn.Linear):
                    handles.append(sub.register_forward_hook(_linear_hook))
                elif isinstance(sub, PerSampleRecurrent):
                    sub.record = _recurrent_record
                if getattr(sub, "per_sample_parameters", ()):
                    sub.record_sample = _accumulate
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
            for module in modules:
                for sub in module.modules():
                    if isinstance(sub, PerSampleRecurrent):
                        sub.record = None
                    if getattr(sub, "per_sample_parameters", ()):
                        sub.record_sample = None

    def clipped_mean(self, params, loss: torch.Tensor, rows: int) -> list:
        """Gradients of ``loss`` (the mean over ``rows`` rows of per-row losses, computed inside
        :meth:`capture`) with each row's gradient clipped to ``max_grad_norm`` like a private
        sequence's, summed and divided by the expected batch size, but without noise: for
        rows that read no private data (synthetic sequences), so that they weigh like the
        private rows they are added to (:meth:`update`'s ``public_grads``). ``loss`` must
        reach no parameter outside ``params`` (detach its synthetic inputs)."""
        for p in params:
            p.grad_sample = None
        (loss * rows).backward()  # (the hooks record the per-row gradients)
        for p in params:
            p.grad = None
        samples = [getattr(p, "grad_sample", None) for p in params]
        present = [g for g in samples if g is not None]
        if not present:
            return [None] * len(params)
        norms = torch.stack([g.reshape(len(g), -1).norm(dim=1) for g in present], 1).norm(dim=1)
        factor = (self.budget.max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
        expected = max(1, round(self.sample_rate * self.n_sequences))
        out = [None if g is None else torch.einsum("b,b...->...", factor, g) / expected
               for g in samples]
        for p in params:
            p.grad_sample = None
        return out

    def check_budget(self) -> None:
        """Raise :class:`PrivacyBudgetExceeded` if one more step would go past the budget."""
        if self.taken >= self.steps:
            spent = self._epsilon(self.taken + 1, self.released)
            raise PrivacyBudgetExceeded(
                f"this fit would spend epsilon={spent:.3g} > the budget {self.budget.epsilon:g}: "
                f"the noise was calibrated for {self.steps} steps and all have been taken. "
                "Fit again with the longer schedule (the noise is then calibrated for it) or a "
                "larger epsilon.")

    def update(self, dp_optimizer, params, batch_loss: torch.Tensor, batch_size: int,
               public_grads=None) -> None:
        """One private step: ``batch_loss`` is the mean over the batch's ``batch_size``
        sequences of a loss each of which depends on its own sequence only (computed inside
        :meth:`capture`). ``public_grads`` (one per parameter, or None) are gradients that read
        no private data (e.g. a discriminator's loss on synthetic sequences): added after the
        noise, unclipped."""
        self.check_budget()
        dp_optimizer.zero_grad(set_to_none=True)
        for p in params:
            p.grad_sample = None
        if batch_size:
            (batch_loss * batch_size).backward()
        for p in params:  # a parameter the loss does not reach (or an empty batch): zeros
            if getattr(p, "grad_sample", None) is None:
                p.grad_sample = p.new_zeros((batch_size, *p.shape))
        if dp_optimizer.pre_step():
            if public_grads is not None:
                for p, g in zip(params, public_grads):
                    if g is not None:
                        p.grad = p.grad + g
            dp_optimizer.original_optimizer.step()
        for p in params:
            p.grad_sample = None
        self.taken += 1

    def release(self, values: torch.Tensor, sensitivity: float) -> torch.Tensor:
        """``values`` (a statistic of the whole data that one sequence changes by at most
        ``sensitivity`` in L2 norm) plus Gaussian noise: one of the planned releases."""
        if self.released >= self.releases:
            raise PrivacyBudgetExceeded(
                f"this fit planned {self.releases} noisy releases and all have been made")
        noise = torch.normal(0.0, self.release_noise * sensitivity, size=values.shape,
                             dtype=values.dtype)
        self.released += 1
        return values + noise.to(values.device)

    # ------------------------------------------------------------------ reporting
    def _epsilon(self, steps: int, releases: int = 0, *, noise: float | None = None,
                 release_noise: float | None = None) -> float:
        """Epsilon at ``delta`` after ``steps`` gradient steps and ``releases`` releases
        (RDP of the subsampled Gaussian mechanism, composed, then converted)."""
        from opacus.accountants import RDPAccountant
        from opacus.accountants.analysis import rdp as analysis

        orders = RDPAccountant.DEFAULT_ALPHAS
        rdp = 0.0
        if steps:
            rdp = rdp + analysis.compute_rdp(
                q=self.sample_rate, steps=steps, orders=orders,
                noise_multiplier=self.noise_multiplier if noise is None else noise)
        if releases:
            rdp = rdp + analysis.compute_rdp(
                q=1.0, steps=releases, orders=orders,
                noise_multiplier=self.release_noise if release_noise is None else release_noise)
        if not steps and not releases:
            return 0.0
        epsilon, _ = analysis.get_privacy_spent(orders=orders, rdp=rdp, delta=self.delta)
        return float(epsilon)

    def spent(self) -> dict:
        """What the fit spent, as saved with the model (``privacy_spent_``)."""
        spent = {"epsilon": self._epsilon(self.taken, self.released),
                 "delta": self.delta, "epsilon_budget": self.budget.epsilon,
                 "max_grad_norm": self.budget.max_grad_norm,
                 "noise_multiplier": self.noise_multiplier, "sample_rate": self.sample_rate,
                 "steps": self.taken, "accountant": "rdp"}
        if self.releases:
            spent.update(releases=self.released, release_noise_multiplier=self.release_noise)
        return spent

    def _noise_levels(self) -> torch.Tensor:
        """The gradient and release noise multipliers (NaN for none): a checkpoint's schedule."""
        return torch.tensor([float("nan") if v is None else v
                             for v in (self.noise_multiplier, self.release_noise)],
                            dtype=torch.float64)

    def state_dict(self) -> dict:
        return {"taken": torch.tensor(self.taken), "released": torch.tensor(self.released),
                "noise_multiplier": self._noise_levels()}

    def load_state_dict(self, state: dict) -> None:
        saved = state["noise_multiplier"].reshape(-1).to(torch.float64)
        ours = self._noise_levels()[:len(saved)]
        if not torch.allclose(saved, ours, rtol=0.0, atol=1e-9, equal_nan=True):
            raise ValueError(
                "the checkpoint's privacy noise differs from this fit's: the schedule changed "
                "since it was written; start the fit afresh (resume=False)")
        self.taken = int(state["taken"])
        self.released = int(state.get("released", torch.tensor(0)))
