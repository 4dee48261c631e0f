"""The GAN and diffusion objectives as step objects: each owns its optimisers and the state it
keeps between steps, and hands the training loop its phases (see :func:`ursa.training.run`);
and :func:`released_statistics`, what a private TimeGAN fit learns from.

:class:`TimeGANObjective` (Yoon et al., NeurIPS 2019) trains in three phases: the embedder and
recovery as an autoencoder, the supervisor on next-step prediction in the latent space, then all
networks jointly. :class:`RCGANObjective` (Esteban et al. 2017) is one adversarial phase on the
data itself. :class:`DiffusionObjective` trains a denoiser (Ho et al., NeurIPS 2020) in one phase.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import torch

from ..data import Sequences
from ..networks.losses import (
    KernelFeatures,
    bce_towards,
    per_sequence_means,
    covariance_loss,
    embedding_gap,
    feature_mmd_loss,
    mask_mse,
    mmd_loss,
    moment_gap,
    moment_loss,
)
from ..networks.recurrent import step_mask
from ..training import Counters, Phase, WeightAverage, apply_update, distributed

__all__ = ["DiffusionObjective", "RCGANObjective", "TimeGANObjective", "draw_noise",
           "released_statistics"]

# A discriminator is updated only while its loss is above this (it is skipped once well ahead).
DISCRIMINATOR_LOSS_FLOOR = 0.15


def draw_noise(n: int, n_steps: int, dim: int, static_dim: int, device,
               generator: torch.Generator | None = None, normal: bool = False) -> torch.Tensor:
    """The generator's input, (n, n_steps, dim + static_dim): ``dim`` channels drawn per step and
    ``static_dim`` drawn once per sequence and repeated at every step, U(0, 1) as in the
    reference (standard normal with ``normal``), drawn on the CPU (so that a seed gives the same
    noise on any device)."""
    draw = torch.randn if normal else torch.rand
    z = draw(n, n_steps, dim, generator=generator)
    if static_dim:
        static = draw(n, 1, static_dim, generator=generator)  # one draw per sequence
        z = torch.cat([z, static.expand(-1, n_steps, -1)], dim=-1)
    return z.to(device)


def released_statistics(seqs: Sequences, private, bound: float, device, *,
                        embedding: bool = False, generator: torch.Generator | None = None):
    """What a private TimeGAN fit matches, released with Gaussian noise: the per-(step, feature)
    mean and standard deviation of ``seqs`` (equal lengths) and, with ``embedding``, their mean
    kernel embedding (:class:`ursa.networks.KernelFeatures` of the kernel the
    ``distribution_weight`` term uses, its width from the released spreads).

    Returns ((mean, std), (features, target) or None). Each sequence's values are clipped to
    [-bound, bound]; its sum, sum of squares and a count scaled like them move the first release
    by at most its sensitivity below, its features (of norm at most ``features.norm_bound``) the
    second, whose mean divides by the first's noisy count."""
    values = np.clip(seqs.values.astype(np.float64), -bound, bound)  # (n, T, C)
    cells = values.shape[1] * values.shape[2]
    scale = bound * np.sqrt(cells)  # the count's weight: like one sequence's sum
    stats = np.concatenate([values.sum(0).ravel(), (values ** 2).sum(0).ravel(),
                            [len(values) * scale]])
    sensitivity = np.sqrt(cells * bound ** 2 + cells * bound ** 4 + scale ** 2)
    noisy = private.release(torch.from_numpy(stats), sensitivity).numpy()
    count = max(noisy[-1] / scale, 1.0)
    mean = (noisy[:cells] / count).reshape(values.shape[1:])
    second = (noisy[cells:2 * cells] / count).reshape(values.shape[1:])
    std = np.sqrt(np.maximum(second - mean ** 2, 0.0) + 1e-6)
    moments = (torch.from_numpy(mean).float().to(device), torch.from_numpy(std).float().to(device))
    if not embedding:
        return moments, None
    # The mean squared distance between two sequences is twice the sum of the variances.
    features = KernelFeatures(cells, float(2 * (std ** 2).sum()), generator=generator)
    x = torch.from_numpy(values).float()
    full = torch.ones(x.shape[:2])
    total = sum(features(x[i:i + 4096], full[i:i + 4096]).double().sum(0)
                for i in range(0, len(x), 4096))
    target = private.release(total, features.norm_bound) / count
    return moments, (features, target.float().to(device))


class _Adversary(NamedTuple):
    """A discriminator of TimeGAN's joint phase, as the joint step uses it."""

    name: str  # "" for the latent discriminator, "data_" for the data-space one: loss-name prefix
    discriminate: Callable  # (values, lengths, conditions) -> per-step logits
    weight: float  # of its term in the generator's loss
    optimizer: torch.optim.Optimizer
    params: tuple


class _Objective:
    """What both objectives share: optimisers, conditions, noise, the generator's weight average
    and the data-space matching terms.

    ``noise(n, n_steps, device)`` draws the generator's input; ``conditions`` is the encoded
    condition of every training sequence (a tensor on the training device) or None; ``matching``
    maps a record name (``"covariance_loss"``, ``"distribution_loss"``,
    ``"feature_distribution_loss"``) to its weight in the generator's loss (0: left out).
    With ``private`` (:class:`ursa.training.PrivateUpdates`) the matching terms, which read real
    batches, are left out, and synthetic batches are ``batch_size`` sequences of ``n_steps``
    steps (:meth:`fake_batch`), whatever the sampled real batch.
    """

    def __init__(self, net, *, noise, conditions, learning_rate: float,
                 max_grad_norm: float | None, matching: dict, ema_decay: float, sampling: list,
                 private=None, n_steps: int | None = None, batch_size: int | None = None):
        self.net, self.noise, self.conditions = net, noise, conditions
        self.learning_rate, self.max_grad_norm = learning_rate, max_grad_norm
        self.private, self.n_steps, self.batch_size = private, n_steps, batch_size
        self.matching = {} if private is not None else {
            name: float(w) for name, w in matching.items() if w}
        self.optimizers: list[torch.optim.Optimizer] = []
        self.stateful: dict = {} if private is None else {"privacy": private}
        self.sampling = torch.nn.ModuleList(sampling)
        self.average = WeightAverage(sampling, ema_decay) if ema_decay else None
        if self.average is not None:
            self.stateful["average"] = self.average

    def optimizer(self, *modules):
        """A new Adam over ``modules``' parameters, joined to ``optimizers`` (checkpointed)."""
        params = [p for m in modules for p in m.parameters()]
        optimizer = torch.optim.Adam(params, lr=self.learning_rate)
        self.optimizers.append(optimizer)
        return optimizer, params

    def update(self, optimizer, params, loss) -> None:
        apply_update(optimizer, params, loss=loss, max_grad_norm=self.max_grad_norm)

    def apply(self, optimizer, params, grads) -> None:
        apply_update(optimizer, params, grads=grads, max_grad_norm=self.max_grad_norm)

    def draw(self, n: int, n_steps: int, device) -> torch.Tensor:
        """The generator's input for a step's ``n`` rows; across processes, this process's rows
        of the global batch's draw (each row gets the noise of a one-process fit)."""
        return distributed.local_rows(self.noise(distributed.batch_total(n), n_steps, device))

    def condition(self, index):
        if self.conditions is None:
            return None
        return self.conditions[torch.from_numpy(index).to(self.conditions.device)]

    def matching_terms(self, fake, real, mask) -> dict:
        """The switched-on matching terms as {record name: (weight, loss)}."""
        losses = {"covariance_loss": covariance_loss, "distribution_loss": mmd_loss,
                  "feature_distribution_loss": feature_mmd_loss}
        return {name: (weight, losses[name](fake, real, mask))
                for name, weight in self.matching.items()}

    def fake_batch(self, device):
        """(lengths, step mask) of a private step's synthetic batch: full-length sequences."""
        full = torch.full((self.batch_size,), self.n_steps, dtype=torch.long, device=device)
        return full, step_mask(full, self.n_steps)

    def average_step(self) -> None:
        if self.average is not None:
            self.average.update_parameters(self.sampling)

    def finish(self) -> None:
        """Leave the networks sampling with the averaged generator weights."""
        if self.average is not None:
            self.average.copy_to(self.sampling)


class RCGANObjective(_Objective):
    """A recurrent generator against a recurrent discriminator on the data, one phase.

    With ``private`` (:class:`ursa.training.PrivateUpdates` over the discriminator) only the
    discriminator reads the data, by DP-SGD steps (its loss on synthetic sequences added without
    noise, clipped row by row like the real rows); the generator learns through it alone (the
    matching terms, which read real batches, are left out), so the released generator is a
    post-processing of the private discriminator's updates. Synthetic batches have the expected
    batch size and the full length, whatever the sampled real batch.
    """

    def __init__(self, net, *, iterations: int, **settings):
        super().__init__(net, sampling=[net.generator], **settings)
        self.iterations = iterations
        self.opt_gen, self.p_gen = self.optimizer(net.generator)
        self.opt_disc, self.p_disc = self.optimizer(net.discriminator)
        if self.private is not None:
            self.dp_disc = self.private.optimizer(self.opt_disc)

    def phases(self) -> list[Phase]:
        return [Phase("adversarial", self.step if self.private is None else self.private_step,
                      iterations=self.iterations)]

    def private_step(self, x, lengths, index) -> dict:
        net, private = self.net, self.private
        batch = self.batch_size
        full, fake_mask = self.fake_batch(x.device)
        fake = net(self.noise(batch, self.n_steps, x.device), None)
        # The loss on synthetic sequences reads no data: no noise, but each row clipped like a
        # real one, so that both weigh alike.
        with private.capture(), per_sequence_means():
            fake_loss = bce_towards(net.discriminate_data(fake.detach(), full, None), 0.0,
                                    fake_mask)
            public = private.clipped_mean(self.p_disc, fake_loss, batch)
        with private.capture(), per_sequence_means():
            real_loss = None
            if len(index):
                real_loss = bce_towards(net.discriminate_data(x, lengths, None), 1.0,
                                        step_mask(lengths, x.size(1)))
            private.update(self.dp_disc, self.p_disc, real_loss, len(index), public_grads=public)
        fooled = bce_towards(net.discriminate_data(fake, full, None), 1.0, fake_mask)
        self.update(self.opt_gen, self.p_gen, fooled)
        self.average_step()
        d_loss = fake_loss.item() + (0.0 if real_loss is None else real_loss.item())
        return {"generator_loss": fooled.item(), "discriminator_loss": d_loss}

    def step(self, x, lengths, index) -> dict:
        net = self.net
        mask = step_mask(lengths, x.size(1))
        c = self.condition(index)
        z = self.draw(x.size(0), x.size(1), x.device)
        fake = net(z, c)
        d_loss = (bce_towards(net.discriminate_data(x, lengths, c), 1.0, mask)
                  + bce_towards(net.discriminate_data(fake.detach(), lengths, c), 0.0, mask))
        self.update(self.opt_disc, self.p_disc, d_loss)
        fooled = bce_towards(net.discriminate_data(fake, lengths, c), 1.0, mask)
        g_loss = fooled
        matching = self.matching_terms(fake, x, mask)
        for weight, term in matching.values():
            g_loss = g_loss + weight * term
        self.update(self.opt_gen, self.p_gen, g_loss)
        self.average_step()
        return {"generator_loss": fooled.item(), "discriminator_loss": d_loss.item(),
                **{key: term.item() for key, (_, term) in matching.items()}}


class TimeGANObjective(_Objective):
    """TimeGAN's three phases; ``executor`` (``submit(fn, *args).result()``, see
    :func:`ursa.training.step_executor`) runs the joint step's independent parts.

    ``gamma`` weighs the adversarial term on unsupervised latents, ``supervised_weight`` and
    ``moment_weight`` the supervised and moment terms of the generator's loss (TimeGAN's 1, 100,
    100); ``data_weight`` the adversarial term of a data-space discriminator (0: none);
    the discriminators step once per ``generator_steps`` generator steps.
    """

    def __init__(self, net, *, pretrain_iterations: int, iterations: int, generator_steps: int,
                 gamma: float, supervised_weight: float, moment_weight: float,
                 data_weight: float, executor, statistics: bool = False, **settings):
        # The sampling path's adversarially trained part. The recovery is left out: it is trained
        # as the embedder's decoder.
        super().__init__(net, sampling=[net.generator, net.supervisor], **settings)
        self.pretrain_iterations, self.iterations = pretrain_iterations, iterations
        self.generator_steps, self.executor = generator_steps, executor
        self.gamma, self.w_sup, self.w_mom = gamma, supervised_weight, moment_weight
        self.opt_ae, p_ae = self.optimizer(net.embedder, net.recovery)
        self.opt_sup, self.p_sup = self.optimizer(net.generator, net.supervisor)
        self.opt_gen, p_gen = self.optimizer(net.generator, net.supervisor)
        self.opt_joint_ae, _ = self.optimizer(net.embedder, net.recovery)
        self.p_gen, self.p_ae = tuple(p_gen), tuple(p_ae)
        # The latent discriminator reads the generator's latents after and before the supervisor
        # (the second weighted by gamma) against the embedded data; the data-space one reads the
        # recovered synthetic sequences against the data, its gradient reaching the generator
        # through the recovery.
        self.adversaries = []
        for name, discriminator, discriminate, weight in [
                ("", net.discriminator, net.discriminate, 1.0),
                ("data_", net.data_discriminator, net.discriminate_data_space, data_weight)]:
            if discriminator is None or not weight:
                continue
            optimizer, params = self.optimizer(discriminator)
            self.adversaries.append(_Adversary(name, discriminate, weight, optimizer,
                                               tuple(params)))
        # Kept between joint steps (and in checkpoints): steps taken, each discriminator's
        # latest loss.
        self.counters = self.stateful["joint"] = Counters(calls=0)
        for adversary in self.adversaries:
            self.counters[adversary.name + "discriminator_loss"] = float("nan")
        # A statistics fit's (mean, std) of the data per (step, feature), released with noise,
        # for the moment term, and its (KernelFeatures, mean embedding), released likewise, for
        # the distribution term; None: no such term (see RecurrentGAN's privacy).
        self.target_moments = self.target_embedding = None
        self.w_dist = float(settings["matching"].get("distribution_loss") or 0.0)
        self.statistics = statistics
        if statistics:
            self.opt_stats, self.p_stats = self.optimizer(net.generator, net.supervisor,
                                                          net.recovery)
        elif self.private is not None:
            self._set_up_private()

    def phases(self) -> list[Phase]:
        if self.statistics:
            return [Phase("joint", self.statistics_step, iterations=self.iterations)]
        pre = self.pretrain_iterations
        private = self.private is not None
        return [Phase("embedding", self.private_embedding_step if private
                      else self.embedding_step, iterations=pre),
                Phase("supervised", self.private_supervised_step if private
                      else self.supervised_step, iterations=pre),
                Phase("joint", self.private_joint_step if private else self.joint_step,
                      iterations=self.iterations * self.generator_steps)]

    # ------------------------------------------------------------------ private training
    # Which networks read the data, phase by phase: the embedder and recovery (embedding phase:
    # reconstruction), the supervisor (supervised phase: next-step prediction on embedded data)
    # and the discriminators (joint phase: their loss on embedded or raw data). Each of those
    # updates is a DP-SGD step of one PrivateUpdates (one noise level, one accountant over the
    # three phases); in the joint phase both discriminators' per-sequence gradients are clipped
    # together, one noisy release per step, and their loss on synthetic sequences is added
    # clipped row by row like the real rows (so that both weigh alike) but without noise. The
    # embedder and recovery stay as the embedding phase left them: refined jointly, their
    # gradients outweighed the discriminators' under the shared clipping norm. The generator
    # reads only noise and, through the supervisor, recovery and discriminators, what private
    # steps released: its updates are post-processing. So the generator's terms that read real
    # batches are left out (the supervised term on embedded data, the moments, the matching
    # terms), and the discriminators step every iteration (their skip rule reads their loss on
    # real data). Synthetic batches have the expected batch size and the full length.

    def _set_up_private(self) -> None:
        net, private = self.net, self.private
        self.dp_ae = private.optimizer(self.opt_ae)
        p_supervisor = list(net.supervisor.parameters())
        self.dp_sup = private.optimizer(torch.optim.Adam(p_supervisor, lr=self.learning_rate))
        self.optimizers.append(self.dp_sup.original_optimizer)
        self.p_supervisor = tuple(p_supervisor)
        joint = [net.discriminator] + (
            [net.data_discriminator] if len(self.adversaries) > 1 else [])
        self.joint_modules = joint
        self.p_joint = tuple(p for m in joint for p in m.parameters())
        self.dp_joint = private.optimizer(torch.optim.Adam(self.p_joint, lr=self.learning_rate))
        self.optimizers.append(self.dp_joint.original_optimizer)

    # A private fit with ``data_bound`` learns from statistics instead: the data's moments and
    # kernel embedding are released once with noise (the fit's whole budget), and the generator,
    # supervisor and recovery, the sampling path, are trained to match them. No step reads the
    # data, the discriminators are not trained, and the released networks are post-processing
    # of the releases. Noisy discriminators gave the generator too weak a signal at any
    # practical epsilon (docs/privacy.md).

    def statistics_step(self, x, lengths, index) -> dict:
        full, fake_mask = self.fake_batch(x.device)
        z = self.noise(self.batch_size, self.n_steps, x.device)
        fake = self.net.recovery(self.net.supervise(self.net.generate_latent(z, None), None))
        loss, losses = 0.0, {}
        if self.w_mom:
            moment = moment_gap(fake, fake_mask, *self.target_moments)
            loss, losses["moment_loss"] = self.w_mom * moment, moment.item()
        if self.target_embedding is not None:
            gap = embedding_gap(fake, fake_mask, *self.target_embedding)
            loss, losses["distribution_loss"] = loss + self.w_dist * gap, gap.item()
        self.update(self.opt_stats, self.p_stats, loss)
        self.average_step()
        return {"generator_loss": float(loss), **losses}

    def private_embedding_step(self, x, lengths, index) -> dict:
        net, private = self.net, self.private
        with private.capture([net.embedder, net.recovery]), per_sequence_means():
            recon = None
            if len(index):
                mask = step_mask(lengths, x.size(1))
                recon = mask_mse(net.recovery(net.embed(x)), x, mask)
            private.update(self.dp_ae, self.p_ae, recon, len(index))
        return {"reconstruction_loss": 0.0 if recon is None else recon.item()}

    def private_supervised_step(self, x, lengths, index) -> dict:
        net, private = self.net, self.private
        with private.capture([net.supervisor]), per_sequence_means():
            loss = None
            if len(index):
                mask = step_mask(lengths, x.size(1))
                with torch.no_grad():
                    h = net.embed(x)
                loss = mask_mse(net.supervise(h, None)[:, :-1], h[:, 1:], mask[:, 1:])
            private.update(self.dp_sup, self.p_supervisor, loss, len(index))
        return {"supervised_loss": 0.0 if loss is None else loss.item()}

    def private_joint_step(self, x, lengths, index) -> dict:
        net, private = self.net, self.private
        self.counters["calls"] += 1
        full, fake_mask = self.fake_batch(x.device)
        z = self.noise(self.batch_size, self.n_steps, x.device)
        e_hat = net.generate_latent(z, None)
        h_hat = net.supervise(e_hat, None)
        fakes = {"": [(h_hat, 1.0), (e_hat, self.gamma)], "data_": [(net.recovery(h_hat), 1.0)]}
        # The generator (and supervisor): the adversaries' terms only.
        g_loss, losses = 0.0, {}
        for adversary in self.adversaries:
            inputs = fakes[adversary.name]
            logits = adversary.discriminate(torch.cat([v for v, _ in inputs]),
                                            full.repeat(len(inputs)), None).split(self.batch_size)
            terms = [bce_towards(part, 1.0, fake_mask) for part in logits]
            losses[adversary.name + "generator_loss"] = terms[0].item()
            g_loss = g_loss + adversary.weight * sum(w * t for (_, w), t in zip(inputs, terms))
        g_grads = torch.autograd.grad(g_loss, self.p_gen, allow_unused=True)
        # The discriminators: their loss on synthetic sequences, each clipped like a real one
        # (but without noise: it reads no data), then the private step on real data.
        with private.capture(self.joint_modules), per_sequence_means():
            d_fake = sum(bce_towards(adversary.discriminate(value.detach(), full, None), 0.0,
                                     fake_mask) * weight
                         for adversary in self.adversaries
                         for value, weight in fakes[adversary.name])
            public = private.clipped_mean(self.p_joint, d_fake, self.batch_size)
        with private.capture(self.joint_modules), per_sequence_means():
            real = None
            if len(index):
                mask = step_mask(lengths, x.size(1))
                with torch.no_grad():
                    h = net.embed(x)
                real = sum(bce_towards(adversary.discriminate(h if adversary.name == "" else x,
                                                              lengths, None), 1.0, mask)
                           for adversary in self.adversaries)
            private.update(self.dp_joint, self.p_joint, real, len(index), public_grads=public)
        self.apply(self.opt_gen, self.p_gen, g_grads)
        self.average_step()
        return {"generator_loss": losses.pop("generator_loss"), **losses,
                "discriminator_loss": d_fake.item() + (0.0 if real is None else real.item())}

    def embedding_step(self, x, lengths, index) -> dict:
        mask = step_mask(lengths, x.size(1))
        recon = mask_mse(self.net.recovery(self.net.embed(x)), x, mask)
        self.update(self.opt_ae, self.p_ae, 10 * torch.sqrt(recon))
        return {"reconstruction_loss": recon.item()}

    def supervised_step(self, x, lengths, index) -> dict:
        mask = step_mask(lengths, x.size(1))
        with torch.no_grad():
            h = self.net.embed(x)
        h_sup = self.net.supervise(h, self.condition(index))
        loss = mask_mse(h_sup[:, :-1], h[:, 1:], mask[:, 1:])
        self.update(self.opt_sup, self.p_sup, loss)
        return {"supervised_loss": loss.item()}

    @staticmethod
    def _adversary_terms(adversary, fakes, real, lengths, mask, c, train_disc):
        """One adversary's call on the synthetic inputs (and the real one when it trains):
        (its fooled term, its weighted generator term, its loss or None)."""
        batch = real.size(0)
        inputs = [v for v, _ in fakes] + ([real] if train_disc else [])
        logits = adversary.discriminate(
            torch.cat(inputs), lengths.repeat(len(inputs)),
            None if c is None else c.repeat(len(inputs), 1))
        logits = logits.split(batch)  # one (batch, time) part per input
        # (A weight of 1.0 multiplies exactly: the reference's unweighted terms.)
        terms = [bce_towards(part, 1.0, mask) for part in logits[:len(fakes)]]
        fooled = term = terms[0]
        for (_, w), extra in zip(fakes[1:], terms[1:]):
            term = term + w * extra
        d_loss = None
        if train_disc:
            d_loss = bce_towards(logits[-1], 1.0, mask)
            for (_, w), part in zip(fakes, logits):
                d_loss = d_loss + w * bce_towards(part, 0.0, mask)
        return fooled, adversary.weight * term, d_loss

    def joint_step(self, x, lengths, index) -> dict:
        # One forward graph serves all three objectives; each optimiser gets only its own
        # gradients, and every gradient is taken before any parameter changes. As in the
        # reference, the discriminators are updated once per ``generator_steps`` generator and
        # embedder updates, and only while their loss is above DISCRIMINATOR_LOSS_FLOOR.
        # Independent parts run through the executor: the embedder beside the generator, the
        # latent discriminator beside the data-space one, the generator's gradients beside the
        # embedder's and the discriminators'. Each part's operations and their order are the
        # same on one thread or two, so the fit is too.
        net, executor, counters = self.net, self.executor, self.counters
        latent, *data_space = self.adversaries  # TimeGAN always has the latent discriminator
        train_disc = counters["calls"] % self.generator_steps == 0
        counters["calls"] += 1
        mask = step_mask(lengths, x.size(1))
        c = self.condition(index)
        batch = x.size(0)
        z = self.draw(batch, x.size(1), x.device)
        embedded = executor.submit(net.embed, x)
        e_hat = net.generate_latent(z, c)  # (batch, time, latent)
        h = embedded.result()  # (batch, time, latent)
        # The supervisor and the recovery each read real and synthetic latents in one call:
        # rows are independent, and one call on 2 * batch costs far less than two on batch.
        c2 = None if c is None else c.repeat(2, 1)
        h_sup, h_hat = net.supervise(torch.cat([h, e_hat]), c2).split(batch)
        sup = mask_mse(h_sup[:, :-1], h[:, 1:], mask[:, 1:])
        # The recovery and its losses come before the adversaries: autograd adds up the gradients
        # that reach a tensor from several consumers in an order set by when those consumers
        # were created, so this order fixes the rounding of every fit.
        x_tilde, x_hat = net.recovery(torch.cat([h, h_hat])).split(batch)
        recon = mask_mse(x_tilde, x, mask)
        moment = moment_loss(x_hat, x, mask)
        # Per adversary: the synthetic inputs with their weights, then the real input. A
        # discriminator's parameters do not change in the generator update, so one call on all
        # of them serves both losses.
        read = (lengths, mask, c, train_disc)
        latent_terms = executor.submit(self._adversary_terms, latent,
                                       [(h_hat, 1.0), (e_hat, self.gamma)], h.detach(), *read)
        terms = {adversary.name: self._adversary_terms(adversary, [(x_hat, 1.0)], x, *read)
                 for adversary in data_space}
        terms[latent.name] = latent_terms.result()
        # The latent adversary's term comes first, as in the reference's loss.
        g_loss = (terms[latent.name][1] + self.w_sup * torch.sqrt(sup + 1e-12)
                  + self.w_mom * moment)
        matching = self.matching_terms(x_hat, x, mask)
        for weight, term in matching.values():
            g_loss = g_loss + weight * term
        for adversary in data_space:
            g_loss = g_loss + terms[adversary.name][1]
        e_loss = 10 * torch.sqrt(recon) + 0.1 * sup
        losses = {"generator_loss": terms[latent.name][0].item(),
                  "supervised_loss": sup.item(), "moment_loss": moment.item(),
                  "reconstruction_loss": recon.item()}
        for adversary in data_space:
            losses[adversary.name + "generator_loss"] = terms[adversary.name][0].item()
        losses.update({key: term.item() for key, (_, term) in matching.items()})
        # Every gradient retains the graph: the other thread may still be reading it (it is freed
        # when this step returns).
        g_grads = executor.submit(torch.autograd.grad, g_loss, self.p_gen, retain_graph=True,
                                  allow_unused=True)
        e_grads = torch.autograd.grad(e_loss, self.p_ae, retain_graph=True, allow_unused=True)
        updates = []
        for adversary in self.adversaries:
            d_loss = terms[adversary.name][2]
            if d_loss is None:
                continue
            key = adversary.name + "discriminator_loss"
            # Averaged across processes, so that every process takes the same decision.
            counters[key] = distributed.global_means({key: d_loss.item()})[key]
            if counters[key] > DISCRIMINATOR_LOSS_FLOOR:
                updates.append((adversary.optimizer, adversary.params, torch.autograd.grad(
                    d_loss, adversary.params, retain_graph=True, allow_unused=True)))
        g_grads = g_grads.result()
        for optimizer, params, grads in updates:
            self.apply(optimizer, params, grads)
        for adversary in self.adversaries:  # the latest step of each discriminator
            key = adversary.name + "discriminator_loss"
            losses[key] = counters[key]
        self.apply(self.opt_gen, self.p_gen, g_grads)
        self.apply(self.opt_joint_ae, self.p_ae, e_grads)
        self.average_step()
        return losses


class DiffusionObjective(_Objective):
    """A denoising diffusion model's training, one phase: each step noises a batch at levels
    drawn uniformly and trains the denoiser to recover the clean batch (the mean squared error
    over valid steps). Sampling uses the denoiser's weight average.
    """

    def __init__(self, net, *, iterations: int, **settings):
        super().__init__(net, sampling=[net], **settings)
        self.iterations = iterations
        self.opt, self.params = self.optimizer(net)

    def phases(self) -> list[Phase]:
        return [Phase("denoising", self.step, iterations=self.iterations)]

    def step(self, x, lengths, index) -> dict:
        net = self.net
        # Levels drawn on the CPU for the global batch, as ``draw`` draws the noise.
        total = distributed.batch_total(x.size(0))
        t = distributed.local_rows(torch.randint(1, net.n_levels + 1, (total,))).to(x.device)
        noise = self.draw(x.size(0), x.size(1), x.device)  # standard normal, shaped like x
        clean = net.denoise(net.noised(x, t, noise), t, lengths, self.condition(index))
        loss = mask_mse(clean, net.to_model(x), step_mask(lengths, x.size(1)))
        self.update(self.opt, self.params, loss)
        self.average_step()
        return {"denoising_loss": loss.item()}
