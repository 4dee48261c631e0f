"""The generic training loop: batching, early stopping, divergence, callbacks, checkpoints."""

import copy
import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

import ursa
from ursa.data import as_sequences
from ursa.networks import RecurrentConfig, SequenceAutoencoderNet, masked_mse
from ursa.training import (
    Callback,
    Checkpoint,
    CheckpointError,
    TrainingConfig,
    TrainingDiverged,
    TrainingInterrupted,
    Counters,
    OptimizerSet,
    Phase,
    iter_batches,
    run,
    train,
)
from conftest import LearningRates, make_sines, make_variable


def loss_fn(net, values, lengths):
    return masked_mse(net(values, lengths)[0], values, lengths)


def small_net(n_features=2):
    torch.manual_seed(0)
    return SequenceAutoencoderNet(RecurrentConfig(input_size=n_features, hidden_size=8), 3)


def test_iter_batches_covers_every_sequence_once_and_buckets_by_length():
    seqs = as_sequences(make_variable(200, 30, 1, seed=3))
    batches = list(iter_batches(seqs, 10, np.random.default_rng(0)))
    assert sorted(np.concatenate(batches).tolist()) == list(range(200))
    spread = np.mean([np.ptp(seqs.lengths[b]) for b in batches])
    assert spread < np.ptp(seqs.lengths) / 3  # similar lengths together: little padding
    ordered = list(iter_batches(seqs, 64))
    assert np.concatenate(ordered).tolist() == list(range(200))


def test_training_lowers_the_loss():
    seqs = as_sequences(make_sines(64, 16, 1))
    history = train(small_net(1), loss_fn, seqs, TrainingConfig(epochs=30, batch_size=8,
                    learning_rate=1e-2, validation_fraction=0.0),
                    rng=np.random.default_rng(0))
    assert len(history) == 30
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]


@pytest.mark.parametrize("validation_fraction, max_steps, expected", [
    (0.0, 7, 3),  # 12 training sequences, batch 4: 3 steps per epoch -> ceil(7 / 3) epochs
    (0.0, 1, 1),
    (0.0, None, 5),
    (0.0, 100, 5),  # epochs is the tighter limit
    (0.25, 4, 2),  # 9 training sequences after the split: still 3 steps per epoch
])
def test_max_steps_caps_the_epochs(validation_fraction, max_steps, expected):
    seqs = as_sequences(make_sines(12, 8, 1))
    history = train(small_net(1), loss_fn, seqs,
                    TrainingConfig(epochs=5, batch_size=4, validation_fraction=validation_fraction,
                                   patience=None, max_steps=max_steps),
                    rng=np.random.default_rng(0))
    assert len(history) == expected


def test_warmup_raises_the_learning_rate_linearly_then_holds_it():
    seqs = as_sequences(make_sines(12, 8, 1))
    seen = LearningRates()
    train(small_net(1), loss_fn, seqs, TrainingConfig(epochs=6, batch_size=4, learning_rate=0.01,
          validation_fraction=0.0, warmup_epochs=4), rng=np.random.default_rng(0), callbacks=[seen])
    np.testing.assert_allclose(seen.rates, [0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01])
    plain = LearningRates()
    train(small_net(1), loss_fn, seqs, TrainingConfig(epochs=2, batch_size=4, learning_rate=0.01,
          validation_fraction=0.0), rng=np.random.default_rng(0), callbacks=[plain])
    assert plain.rates == [0.01, 0.01]


def test_warmup_resumes_at_the_interrupted_epoch_rate(tmp_path):
    """A run cut after epoch 2 and resumed from its checkpoint continues the warm-up (epoch 3 at
    3/4 of the rate) and ends with the weights of an uninterrupted run."""
    seqs = as_sequences(make_sines(12, 8, 1))
    config = dict(batch_size=4, learning_rate=0.01, validation_fraction=0.0, warmup_epochs=4)
    whole = small_net(1)
    train(whole, loss_fn, seqs, TrainingConfig(epochs=5, **config), rng=np.random.default_rng(0))
    net = small_net(1)
    train(net, loss_fn, seqs, TrainingConfig(epochs=2, **config), rng=np.random.default_rng(0),
          callbacks=[Checkpoint(tmp_path / "ckpt")])
    seen = LearningRates()
    train(net, loss_fn, seqs, TrainingConfig(epochs=5, **config), rng=np.random.default_rng(1),
          callbacks=[Checkpoint(tmp_path / "ckpt", resume=True), seen])
    np.testing.assert_allclose(seen.rates, [0.0075, 0.01, 0.01])
    for a, b in zip(whole.state_dict().values(), net.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_early_stopping_restores_the_best_weights():
    seqs = as_sequences(make_sines(60, 12, 2))
    net = small_net()
    snapshots = []

    class Snap(Callback):
        def on_epoch_end(self, state, record):
            snapshots.append({k: v.clone() for k, v in state.module.state_dict().items()})

    config = TrainingConfig(epochs=40, batch_size=8, learning_rate=0.05, validation_fraction=0.3,
                            patience=2)
    history = train(net, loss_fn, seqs, config, rng=np.random.default_rng(0), callbacks=[Snap()])
    best = int(np.argmin([r["val_loss"] for r in history]))
    assert len(history) - 1 - best == 2 or len(history) == 40
    for k, v in net.state_dict().items():
        assert torch.equal(v, snapshots[best][k])


def test_divergence_names_epoch_and_batch_and_keeps_good_weights():
    seqs = as_sequences(make_sines(32, 8, 2))
    net = small_net()
    calls = {"n": 0}

    def exploding(module, values, lengths):
        calls["n"] += 1
        loss = loss_fn(module, values, lengths)
        return loss * float("nan") if calls["n"] == 7 else loss

    good = {}

    class Keep(Callback):
        def on_epoch_end(self, state, record):
            good.update({k: v.clone() for k, v in state.module.state_dict().items()})

    with pytest.raises(TrainingDiverged, match=r"epoch 2, batch 3.*Lower learning_rate"):
        train(net, exploding, seqs, TrainingConfig(epochs=5, batch_size=8, validation_fraction=0.0),
              rng=np.random.default_rng(0), callbacks=[Keep()])
    for k, v in net.state_dict().items():
        assert torch.equal(v, good[k])


def test_callbacks_can_stop_training():
    class StopAtTwo(Callback):
        def on_epoch_end(self, state, record):
            state.stop = record["epoch"] == 2

    history = train(small_net(), loss_fn, as_sequences(make_sines(16, 6, 2)),
                    TrainingConfig(epochs=10, batch_size=8), rng=np.random.default_rng(0),
                    callbacks=[StopAtTwo()])
    assert len(history) == 2


def test_checkpoint_holds_last_epoch(tmp_path):
    net = small_net()
    train(net, loss_fn, as_sequences(make_sines(16, 6, 2)),
          TrainingConfig(epochs=3, batch_size=8, validation_fraction=0.0),
          rng=np.random.default_rng(0), callbacks=[Checkpoint(tmp_path / "ckpt")])
    with safe_open(str(tmp_path / "ckpt" / "checkpoint.safetensors"), framework="pt") as fh:
        saved = json.loads(fh.metadata()["state"])
        assert saved["epoch"] == 3 and not saved["finished"] and len(saved["history"]) == 3
        for k, v in net.state_dict().items():
            assert torch.equal(fh.get_tensor(f"module.{k}"), v)
        assert {k.split(".")[0] for k in fh.keys()} == {"module", "optimizer", "rng", "stateful"}
    assert not list((tmp_path / "ckpt").glob("*.tmp"))


def test_pass_index_hands_the_batch_positions_in_the_input():
    seqs = as_sequences(make_variable(40, 12, 2, seed=4))
    seen = {"train": [], "eval": []}

    def indexed_loss(net, values, lengths, index):
        # the positions name exactly the sequences in the batch
        for row, position in enumerate(index):
            n = int(lengths[row])
            assert n == seqs.lengths[position]
            np.testing.assert_array_equal(values[row, :n].numpy(), seqs.values[position, :n])
        seen["train" if net.training else "eval"].append(np.asarray(index))
        return loss_fn(net, values, lengths)

    train(small_net(), indexed_loss, seqs, TrainingConfig(epochs=1, batch_size=8,
          validation_fraction=0.25), rng=np.random.default_rng(0), pass_index=True)
    trained, held_out = np.concatenate(seen["train"]), np.concatenate(seen["eval"])
    assert len(held_out) == 10 and not set(trained) & set(held_out)
    assert sorted(np.concatenate([trained, held_out]).tolist()) == list(range(40))


# ----------------------------------------------------------------- multi-phase training
def adam_pair(seed=0):
    torch.manual_seed(seed)
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(2, 1)
    return (a, b), OptimizerSet([torch.optim.Adam(a.parameters(), lr=0.1),
                                 torch.optim.Adam(b.parameters(), lr=0.01)])


def adam_steps(modules, optimizers, n):
    for _ in range(n):
        for module, opt in zip(modules, optimizers.optimizers):
            opt.zero_grad()
            module(torch.ones(4, module.in_features)).pow(2).sum().backward()
            opt.step()


def test_optimizer_set_state_round_trips_into_fresh_optimizers():
    """Saved as one state dict, loaded into new optimisers over copies of the weights, the
    moments and step counts carry on: further steps give the same weights."""
    modules, optimizers = adam_pair()
    adam_steps(modules, optimizers, 3)
    saved = copy.deepcopy(optimizers.state_dict())  # torch hands out its live state tensors
    ids = [p for g in saved["param_groups"] for p in g["params"]]
    assert ids == list(range(4)) and sorted(saved["state"]) == ids  # unique across optimisers
    copies, fresh = adam_pair(seed=1)
    for twin, module in zip(copies, modules):
        twin.load_state_dict(module.state_dict())
    fresh.load_state_dict(saved)
    adam_steps(modules, optimizers, 2)
    adam_steps(copies, fresh, 2)
    for twin, module in zip(copies, modules):
        for x, y in zip(twin.parameters(), module.parameters()):
            assert torch.equal(x, y)
    assert [g["lr"] for g in fresh.param_groups] == [0.1, 0.01]
    with pytest.raises(ValueError, match="parameter groups"):
        OptimizerSet(fresh.optimizers[:1]).load_state_dict(saved)


class Counter(Callback):
    """Counts steps and stops with Ctrl-C at a given record."""

    def __init__(self, stop_at=None):
        self.stop_at = stop_at

    def on_epoch_end(self, state, record):
        if record["epoch"] == self.stop_at:
            raise KeyboardInterrupt


def phased_run(tmp_path, stop_at=None, resume=False):
    """Two phases on one net whose steps keep a counter and draw noise from torch's generator."""
    torch.manual_seed(0)
    net = small_net()
    seqs = as_sequences(make_sines(30, 6, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    counters = Counters(steps=0)
    seen = []

    def step(values, lengths, index):
        counters["steps"] += 1
        seen.append((counters["steps"], index.tolist()))
        opt.zero_grad()
        noisy = values + 0.01 * torch.randn_like(values)
        loss = masked_mse(net(noisy, lengths)[0], values, lengths)
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    history = run(
        net, [Phase("a", step, iterations=7), Phase("b", step, iterations=12)], seqs, batch_size=8,
        rng=np.random.default_rng(0), log_every=3, optimizer=opt, stateful={"counts": counters},
        callbacks=[Counter(stop_at), Checkpoint(tmp_path, resume=resume)])
    return net, history, seen


def test_run_resumes_mid_phase_and_mid_pass(tmp_path):
    """Records every 3 steps fall inside phases and inside passes over the 30 sequences (4 batches
    per pass): a resumed run draws the batches the uninterrupted one drew, and ends the same."""
    straight, history, seen = phased_run(tmp_path / "straight")
    assert [(r["phase"], r["iteration"]) for r in history] == [
        ("a", 3), ("a", 6), ("a", 7), ("b", 3), ("b", 6), ("b", 9), ("b", 12)]
    with pytest.raises(TrainingInterrupted, match="checkpoint.*epoch 4"):
        phased_run(tmp_path / "run", stop_at=5)  # its checkpoint holds 4 records
    resumed, resumed_history, resumed_seen = phased_run(tmp_path / "run", resume=True)
    assert resumed_seen == seen[10:]  # step 11 onwards, same batches, same step count
    assert resumed_history == [{**r, "seconds": s["seconds"]}
                               for r, s in zip(history, resumed_history)]
    for x, y in zip(resumed.parameters(), straight.parameters()):
        assert torch.equal(x, y)


def test_checkpoint_refuses_a_file_without_the_state_a_run_needs(tmp_path):
    net = small_net()
    train(net, loss_fn, as_sequences(make_sines(16, 6, 2)),
          TrainingConfig(epochs=1, batch_size=8, validation_fraction=0.0),
          rng=np.random.default_rng(0), callbacks=[Checkpoint(tmp_path)])
    with pytest.raises(CheckpointError, match="holds no 'counts' state"):
        run(net, [Phase("a", lambda v, n, i: {"loss": 0.0}, iterations=2)],
            as_sequences(make_sines(16, 6, 2)), batch_size=8, rng=np.random.default_rng(0),
            optimizer=torch.optim.Adam(net.parameters()), stateful={"counts": Counters()},
            callbacks=[Checkpoint(tmp_path, resume=True)])


# ----------------------------------------------------------------------------- precision
def test_bfloat16_is_refused_without_native_support(monkeypatch):
    from ursa.training import check_precision

    check_precision("float32", "cpu")  # always accepted
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    with pytest.raises(ValueError, match="precision='bfloat16' needs native bfloat16.*"
                                         "neither AMX nor AVX512-BF16.*precision='float32'"):
        check_precision("bfloat16", "cpu")
    X = np.random.default_rng(0).normal(size=(16, 6, 2)).astype(np.float32)
    with pytest.raises(ValueError, match="precision='bfloat16'"):
        ursa.SequenceAutoencoder(precision="bfloat16", device="cpu", epochs=1).fit(X)


@pytest.mark.skipif(not ursa.training.bf16_native("cpu"), reason="this CPU has no native bfloat16")
@pytest.mark.parametrize("cls", ["SequenceAutoencoder", "RecurrentClusterer"])
def test_bfloat16_training_follows_float32(cls):
    X = ursa.datasets.make_sines(64, n_timesteps=20, n_features=3, random_state=0)
    params = dict(cell="lstm", hidden_size=16, latent_dim=4, epochs=6, random_state=0,
                  device="cpu", verbose=False, validation_fraction=0.0, patience=None)
    if cls == "RecurrentClusterer":
        params.update(n_clusters=2, clustering_epochs=2)
    fits = {p: getattr(ursa, cls)(**params, precision=p).fit(X) for p in ("float32", "bfloat16")}
    curves = {p: np.array([r["train_loss"] for r in m.history_]) for p, m in fits.items()}
    assert curves["bfloat16"][-1] < curves["bfloat16"][0]  # it learns
    np.testing.assert_allclose(curves["bfloat16"], curves["float32"], rtol=0.05)
    codes = {p: m.transform(X) for p, m in fits.items()}
    assert codes["bfloat16"].dtype == np.float32 and np.isfinite(codes["bfloat16"]).all()
    scale = np.abs(codes["float32"]).max()
    assert np.abs(codes["bfloat16"] - codes["float32"]).max() < 0.1 * scale


def test_gan_refuses_bfloat16():
    X = ursa.datasets.make_sines(16, n_timesteps=6, n_features=2, random_state=0)
    with pytest.raises(ValueError, match="RecurrentGAN trains in float32 only"):
        ursa.RecurrentGAN(precision="bfloat16", iterations=1, pretrain_iterations=1).fit(X)
    with pytest.raises(ValueError, match="precision"):
        ursa.SequenceAutoencoder(precision="float16").fit(X)
