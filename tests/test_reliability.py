"""Faults injected into training: SIGKILL and Ctrl-C mid-fit, resuming, divergence, threads."""

import json
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from safetensors import safe_open

from ursa import SequenceAutoencoder, TrainingDiverged
from ursa.training import Callback, CheckpointError, TrainingInterrupted
from conftest import DEVICE, fit_tiny, make_sines, make_variable
from estimator_registry import ESTIMATORS
from reliability_log import record

# Dropout between two layers and an early-stopping split: every random generator is in play. On
# a GPU, cuDNN draws the dropout between layers from a generator of its own that no checkpoint
# can hold (it is reseeded when a fit starts), so there the tests run without it (see the
# `checkpoint_dir` documentation).
PARAMS = dict(hidden_size=8, latent_dim=3, num_layers=2, dropout=0.2 if DEVICE == "cpu" else 0.0,
              epochs=8, batch_size=8, validation_fraction=0.25, patience=3, random_state=7,
              device=DEVICE, n_threads=1)
X = make_variable(32, 12, 2, seed=5)


@pytest.fixture(scope="module")
def uninterrupted():
    return SequenceAutoencoder(**PARAMS).fit(X)


def same_weights(a, b):
    wa, wb = a.network_.state_dict(), b.network_.state_dict()
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def checkpoint_epoch(directory):
    path = directory / "checkpoint.safetensors"
    if not path.exists():
        return 0
    with safe_open(str(path), framework="pt") as fh:
        return json.loads(fh.metadata()["state"])["epoch"]


CHILD = textwrap.dedent("""
    import signal, sys, time
    # A child started from a background job inherits SIGINT as ignored, and Python then installs
    # no KeyboardInterrupt handler: restore it, or Ctrl-C could not reach the fit.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import numpy as np
    import torch
    from ursa import SequenceAutoencoder
    from ursa.training import Callback

    torch.backends.cudnn.allow_tf32 = False  # as conftest.py sets it for the parent on a GPU

    class Slow(Callback):  # gives the parent time to strike mid-fit
        # Runs before the checkpoint writer: once the checkpoint of epoch 2 is written, the end of
        # epoch 3 waits for the parent's signal (a sleep ends at once on SIGINT or SIGKILL), so a
        # loaded machine cannot let the fit finish before the signal arrives.
        def on_epoch_end(self, state, record):
            time.sleep(0.3 if record["epoch"] < 3 else 120)

    data = np.load(sys.argv[1])
    X = [data[f"x{i}"] for i in range(len(data.files))]
    params = eval(sys.argv[2])
    SequenceAutoencoder(**params, callbacks=[Slow()], checkpoint_dir=sys.argv[3]).fit(X)
    print("finished")
""")


def run_child_until(tmp_path, sig, min_epoch=2):  # min_epoch < 3: see CHILD's Slow
    data = tmp_path / "X.npz"
    np.savez(data, **{f"x{i}": x for i, x in enumerate(X)})
    ckpt = tmp_path / "ckpt"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(data), repr(PARAMS), str(ckpt)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    try:
        while checkpoint_epoch(ckpt) < min_epoch:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the child never wrote a checkpoint"
            time.sleep(0.02)
    except BaseException:  # a failed wait must not leave the child running (it sleeps at epoch 3)
        child.kill()
        child.communicate()
        raise
    child.send_signal(sig)
    out, err = child.communicate(timeout=60)
    return child.returncode, out, err, ckpt


def test_sigkill_mid_fit_then_resume_gives_the_uninterrupted_weights(tmp_path, uninterrupted):
    code, out, _, ckpt = run_child_until(tmp_path, signal.SIGKILL)
    assert code == -signal.SIGKILL and "finished" not in out
    killed_at = checkpoint_epoch(ckpt)
    assert 2 <= killed_at < len(uninterrupted.history_)
    resumed = SequenceAutoencoder(**PARAMS, checkpoint_dir=ckpt).fit(X, resume=True)
    assert same_weights(resumed, uninterrupted)
    drop = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert drop(resumed.history_) == drop(uninterrupted.history_)
    assert [r["train_loss"] for r in resumed.history_] == uninterrupted.loss_curve_
    np.testing.assert_array_equal(resumed.transform(X), uninterrupted.transform(X))
    assert not list(ckpt.glob("*.tmp"))
    record("fault: SIGKILL mid-fit, then fit(resume=True)", 1, "weights bit-identical to an "
           "uninterrupted fit")


# The other estimators whose training resumes after a kill: the GAN (checkpoints mid-phase and
# mid-pass, five optimisers, the weight average) and the clusterer's clustering stage (its target
# distribution). Each strikes once the stage's checkpoint holds ``strike_at`` records; the child
# then sleeps at the next record (before its checkpoint) until the signal arrives.
KILLED = {
    "RecurrentGAN": dict(
        # records: 1 embedding, 1 supervised, 2 joint (100, 150); 100 steps are not whole passes
        # over the 32 sequences in batches of 6, so the strike falls mid-pass too
        params=dict(hidden_size=8, latent_dim=4, num_layers=1, iterations=150,
                    pretrain_iterations=100, batch_size=6, random_state=3, device=DEVICE,
                    n_threads=1),
        stage="", strike_at=3),
    "RecurrentClusterer": dict(
        params=dict(n_clusters=2, hidden_size=8, latent_dim=3, num_layers=2,
                    dropout=0.2 if DEVICE == "cpu" else 0.0, epochs=2, clustering_epochs=6,
                    tol=0.0, batch_size=8, random_state=3, device=DEVICE, n_threads=1),
        stage="cluster", strike_at=3),
}

CHILD_ANY = textwrap.dedent("""
    import sys, time
    import numpy as np
    import torch
    import ursa
    from ursa.training import Callback

    torch.backends.cudnn.allow_tf32 = False

    class Slow(Callback):  # in the watched stage, wait for the signal after the strike point
        def on_epoch_end(self, state, record):
            in_stage = sys.argv[5] == "" or "target" in state.stateful
            if in_stage and state.epoch > int(sys.argv[6]):
                time.sleep(120)

    data = np.load(sys.argv[2])
    X = [data[f"x{i}"] for i in range(len(data.files))]
    cls = getattr(ursa, sys.argv[1])
    cls(**eval(sys.argv[3]), callbacks=[Slow()], checkpoint_dir=sys.argv[4]).fit(X)
    print("finished")
""")


@pytest.mark.parametrize("name", sorted(KILLED))
def test_sigkill_mid_stage_then_resume_gives_the_uninterrupted_weights(tmp_path, name):
    case = KILLED[name]
    cls = getattr(__import__("ursa"), name)
    data = tmp_path / "X.npz"
    np.savez(data, **{f"x{i}": x for i, x in enumerate(X)})
    ckpt = tmp_path / "ckpt"
    watched = ckpt / case["stage"] if case["stage"] else ckpt
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_ANY, name, str(data), repr(case["params"]), str(ckpt),
         case["stage"], str(case["strike_at"])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    try:
        while checkpoint_epoch(watched) < case["strike_at"]:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the child never reached the strike point"
            time.sleep(0.02)
    finally:  # a failed wait must not leave the child running (it sleeps past the strike)
        child.kill()
        out, _ = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL and "finished" not in out
    assert checkpoint_epoch(watched) == case["strike_at"]
    straight = cls(**case["params"]).fit(X)
    resumed = cls(**case["params"], checkpoint_dir=ckpt).fit(X, resume=True)
    assert same_weights(resumed, straight)
    drop = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert drop(resumed.history_) == drop(straight.history_)
    if name == "RecurrentGAN":
        np.testing.assert_array_equal(resumed.sample(4, n_timesteps=12, random_state=0),
                                      straight.sample(4, n_timesteps=12, random_state=0))
    else:
        np.testing.assert_array_equal(resumed.labels_, straight.labels_)
    record(f"fault: SIGKILL mid-fit ({name}{', clustering stage' if case['stage'] else ''}), "
           "then fit(resume=True)", 1, "weights bit-identical to an uninterrupted fit")


def test_ctrl_c_leaves_a_usable_checkpoint_and_says_how_to_resume(tmp_path, uninterrupted):
    code, out, err, ckpt = run_child_until(tmp_path, signal.SIGINT)
    assert code != 0 and "finished" not in out
    assert "TrainingInterrupted: Training interrupted" in err
    assert "resume=True" in err and "checkpoint.safetensors" in err
    resumed = SequenceAutoencoder(**PARAMS, checkpoint_dir=ckpt).fit(X, resume=True)
    assert same_weights(resumed, uninterrupted)
    record("fault: Ctrl-C (SIGINT) mid-fit, then fit(resume=True)", 1,
           "TrainingInterrupted naming the checkpoint; resumed weights bit-identical")


class InterruptAt(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, state, record):
        if record["epoch"] == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.parametrize("every", [1, 3])
def test_interrupt_in_process_then_resume(tmp_path, uninterrupted, every):
    est = SequenceAutoencoder(**PARAMS, checkpoint_dir=tmp_path, checkpoint_every=every,
                              callbacks=[InterruptAt(5)])
    with pytest.raises(TrainingInterrupted, match=r"after epoch 5.*epoch 5\..*checkpoint") as info:
        est.fit(X)
    last = 4 if every == 1 else 3  # this callback runs before the checkpoint writer
    assert f"epoch {last}) is complete" in str(info.value)
    assert not hasattr(est, "network_")  # an interrupted fit leaves no half-fitted model
    est.set_params(callbacks=None).fit(X, resume=True)
    assert same_weights(est, uninterrupted)
    record("fault: KeyboardInterrupt at an epoch end (checkpoint every 1 or 3 epochs)", 1,
           "clear message; resumed weights bit-identical")


def test_interrupt_without_checkpoint_dir_says_how_to_make_it_resumable():
    est = SequenceAutoencoder(**PARAMS, callbacks=[InterruptAt(2)])
    with pytest.raises(TrainingInterrupted, match="Set checkpoint_dir"):
        est.fit(X)


def test_resume_refuses_a_checkpoint_of_another_fit(tmp_path):
    SequenceAutoencoder(**{**PARAMS, "epochs": 2}, checkpoint_dir=tmp_path).fit(X)
    other = make_variable(32, 12, 2, seed=6)
    with pytest.raises(CheckpointError, match="other data or parameters"):
        SequenceAutoencoder(**PARAMS, checkpoint_dir=tmp_path).fit(other, resume=True)
    with pytest.raises(CheckpointError, match="other data or parameters"):
        SequenceAutoencoder(**{**PARAMS, "hidden_size": 9}, checkpoint_dir=tmp_path).fit(
            X, resume=True)
    (tmp_path / "checkpoint.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot be read.*delete it"):
        SequenceAutoencoder(**PARAMS, checkpoint_dir=tmp_path).fit(X, resume=True)
    record("fault: resume from a checkpoint of other data, other parameters, or garbage", 3,
           "CheckpointError naming the file and the fix")


def test_resume_without_checkpoint_dir_is_a_clear_error():
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        SequenceAutoencoder(**PARAMS).fit(X, resume=True)


def test_resume_with_nothing_saved_starts_afresh_and_a_finished_run_can_be_extended(
        tmp_path, uninterrupted):
    est = SequenceAutoencoder(**PARAMS, checkpoint_dir=tmp_path).fit(X, resume=True)
    assert same_weights(est, uninterrupted)
    again = SequenceAutoencoder(**PARAMS, checkpoint_dir=tmp_path).fit(X, resume=True)
    assert same_weights(again, uninterrupted) and len(again.history_) == uninterrupted.n_iter_
    no_stop = {**PARAMS, "patience": None, "epochs": 3}
    SequenceAutoencoder(**no_stop, checkpoint_dir=tmp_path / "b").fit(X)
    longer = SequenceAutoencoder(**{**no_stop, "epochs": 5}, checkpoint_dir=tmp_path / "b")
    assert len(longer.fit(X, resume=True).history_) == 5
    straight = SequenceAutoencoder(**{**no_stop, "epochs": 5}).fit(X)
    assert same_weights(longer, straight)


def test_divergence_names_epoch_and_batch_keeps_last_good_weights_and_suggests_fixes():
    seen = {}

    class Poison(Callback):  # corrupt one weight after epoch 2: the next loss is NaN
        def on_epoch_end(self, state, record):
            if record["epoch"] == 2:
                seen["good"] = {k: v.clone() for k, v in state.module.state_dict().items()}
                with torch.no_grad():
                    next(state.module.parameters()).view(-1)[0] = float("nan")

    est = SequenceAutoencoder(**{**PARAMS, "dropout": 0.0}, callbacks=[Poison()])
    with pytest.raises(TrainingDiverged) as info:
        est.fit(X)
    message = str(info.value)
    assert "epoch 3, batch 1" in message and "Lower learning_rate" in message
    assert "scaling='standard'" in message
    kept = est.network_.state_dict()  # the estimator keeps the last good weights, usable
    assert all(torch.equal(kept[k], seen["good"][k]) for k in kept)
    assert len(est.history_) == 2 and np.isfinite(est.transform(X)).all()
    record("fault: NaN loss mid-training", 1, "TrainingDiverged naming epoch and batch, "
           "suggesting fixes; last good weights kept")


@pytest.mark.parametrize("cls, params, outputs", ESTIMATORS,
                         ids=[cls.__name__ for cls, _, _ in ESTIMATORS])
def test_a_fitted_model_is_safe_to_use_from_several_threads(cls, params, outputs):
    Xs = [make_sines(24, 16, 2, seed=s) for s in range(6)]
    methods = list(outputs(cls(**params), 1, 1, 1))

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cls(**params).fit(Xs[0])

    est = fit()
    sequential = [[getattr(est, m)(x) for m in methods] for x in Xs]
    for model in (est, fit()):  # the second model's first use happens concurrently
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda x: [getattr(model, m)(x) for m in methods], Xs * 2))
        for got, want in zip(results, sequential * 2):
            for g, w in zip(got, want):
                np.testing.assert_array_equal(g, w)
    record("fault: one fitted model used from 4 threads at once (calls)",
           2 * len(Xs) * 2 * len(methods), "results identical to sequential use")


def test_clusterer_interrupted_in_pretraining_resumes_to_the_uninterrupted_result(tmp_path):
    from ursa import RecurrentClusterer

    params = dict(n_clusters=2, hidden_size=8, latent_dim=3, epochs=6, clustering_epochs=3,
                  batch_size=8, random_state=3, device=DEVICE, n_threads=1)
    straight = RecurrentClusterer(**params).fit(X)
    est = RecurrentClusterer(**params, checkpoint_dir=tmp_path, callbacks=[InterruptAt(4)])
    with pytest.raises(TrainingInterrupted, match="resume=True"):
        est.fit(X)
    assert (tmp_path / "pretrain" / "checkpoint.safetensors").exists()
    est.set_params(callbacks=None).fit(X, resume=True)
    assert same_weights(est, straight)
    np.testing.assert_array_equal(est.labels_, straight.labels_)
    record("fault: KeyboardInterrupt in RecurrentClusterer's pretraining, then resume", 1,
           "labels and weights identical to an uninterrupted fit")


GAN_PARAMS = dict(hidden_size=8, latent_dim=4, num_layers=1, iterations=150,
                  pretrain_iterations=2, batch_size=16, random_state=0, device=DEVICE, n_threads=1)
GAN_X = make_sines(40, 10, 2)


def fit_gan(y=None, resume=False, **params):
    from ursa import RecurrentGAN

    return fit_tiny(RecurrentGAN(**{**GAN_PARAMS, **params}), GAN_X, y, resume=resume)


@pytest.mark.parametrize("architecture, params, stop", [
    # mid-joint: the checkpoint of record 4 falls after 200 of 300 steps, between two
    # discriminator updates (one per 3 steps)
    ("timegan", dict(iterations=100, generator_steps=3, checkpoint_every=2), 5),
    # the same with the data-space discriminator: its optimiser and latest loss resume too
    ("timegan", dict(iterations=100, generator_steps=3, checkpoint_every=2, data_weight=1.0), 5),
    ("timegan", dict(iterations=100, pretrain_iterations=150), 2),  # mid-embedding
    ("rcgan", dict(iterations=250), 2),
])
def test_gan_interrupted_mid_phase_resumes_to_the_uninterrupted_model(tmp_path, architecture,
                                                                      params, stop):
    """Checkpoints fall every 100 iterations, mid-phase and mid-pass over the data: the resumed
    fit must continue the same batches, noise, optimiser moments, weight average and step
    counters, and end bit-identical to a fit that was never interrupted."""
    y = np.arange(len(GAN_X)) % 2  # conditions are part of what a checkpoint must match
    params = dict(architecture=architecture, **params)
    straight = fit_gan(y, **params)
    with pytest.raises(TrainingInterrupted, match="resume=True"):
        # on one thread; resumed (and the straight fit) with step_threads="auto": how a fit runs
        # may change on resume, what it computes may not
        fit_gan(y, checkpoint_dir=tmp_path, callbacks=[InterruptAt(stop)], step_threads=1,
                **params)
    with pytest.raises(CheckpointError, match="other data or parameters"):
        fit_gan(1 - y, checkpoint_dir=tmp_path, resume=True, **params)
    resumed = fit_gan(y, checkpoint_dir=tmp_path, resume=True, **params)
    assert same_weights(resumed, straight)
    assert [r["train_loss"] for r in resumed.history_] == straight.loss_curve_
    np.testing.assert_array_equal(resumed.sample(5, y=[0, 1, 0, 1, 1], random_state=3),
                                  straight.sample(5, y=[0, 1, 0, 1, 1], random_state=3))
    assert resumed.diversity_ratio_ == straight.diversity_ratio_
    record("fault: KeyboardInterrupt in RecurrentGAN's training (mid-phase, mid-pass), then "
           "resume; resuming with other conditions", 2, "samples and weights identical to an "
           "uninterrupted fit; CheckpointError for the other conditions")


def test_gan_resuming_a_finished_fit_trains_no_further(tmp_path):
    done = fit_gan(checkpoint_dir=tmp_path)
    again = fit_gan(checkpoint_dir=tmp_path, resume=True)
    assert same_weights(again, done) and again.history_ == done.history_
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        fit_gan(resume=True)


def test_clusterer_pretraining_extends_when_max_steps_is_raised(tmp_path):
    """max_steps is a run-length limit like epochs: raising it continues the checkpointed run
    (no fingerprint refusal) and gives the same weights as one run with the higher limit."""
    from ursa import RecurrentClusterer

    params = dict(n_clusters=2, hidden_size=8, latent_dim=3, epochs=50, clustering_epochs=2,
                  batch_size=8, random_state=3, device=DEVICE, n_threads=1)  # 4 batches per epoch
    straight = RecurrentClusterer(**params, max_steps=16).fit(X)
    est = RecurrentClusterer(**params, max_steps=8, checkpoint_dir=tmp_path).fit(X)
    assert sum(r["stage"] == "pretrain" for r in est.history_) == 2
    est.set_params(max_steps=16).fit(X, resume=True)
    assert sum(r["stage"] == "pretrain" for r in est.history_) == 4
    assert same_weights(est, straight)


def test_gan_divergence_names_the_phase_and_iteration():
    from ursa import RecurrentGAN

    class Poison(Callback):  # corrupt a weight after the first record: the next loss is NaN
        def on_epoch_end(self, state, record):
            with torch.no_grad():
                next(state.module.parameters()).view(-1)[0] = float("nan")

    gan = RecurrentGAN(hidden_size=8, latent_dim=3, iterations=2, pretrain_iterations=2,
                       batch_size=8, random_state=0, device=DEVICE, callbacks=[Poison()])
    with pytest.raises(TrainingDiverged, match=r"in phase .*iteration \d+\. The weights of the last "
                       r"record were kept\. Lower learning_rate"):
        gan.fit(make_sines(16, 8, 2))
    record("fault: NaN loss mid-training (RecurrentGAN)", 1,
           "TrainingDiverged naming the phase and iteration, suggesting fixes")
