"""Every estimator joins the shared suite (test_estimator_suite.py) by adding one entry here:
the class, tiny parameters that fit in well under a second, and the inference methods it has
with the shape each returns for (n_sequences, n_timesteps, n_features) input."""

from conftest import DEVICE
from ursa import RecurrentClusterer, RecurrentGAN, SequenceAnomalyDetector, SequenceAutoencoder

TINY = dict(hidden_size=8, latent_dim=3, epochs=2, batch_size=16, random_state=0, device=DEVICE)


def _autoencoder_outputs(est, n, t, c):
    return {
        "transform": (n, est.latent_dim),
        "reconstruct": (n, t, c),
        "decision_function": (n,),
        "score_samples": (n,),
        "step_errors": (n, t),
    }


def _clusterer_outputs(est, n, t, c):
    return {
        "transform": (n, est.latent_dim),
        "predict": (n,),
        "predict_proba": (n, est.n_clusters),
    }


CLUSTERER_TINY = dict(n_clusters=2, hidden_size=8, latent_dim=3, epochs=2, clustering_epochs=2,
                      batch_size=16, random_state=0, device=DEVICE)


def _anomaly_outputs(est, n, t, c):
    return {"decision_function": (n, t), "score_samples": (n, t)}  # one score per step


# 3-D input is several long series; a 2-D array is one (T, C) series (see the suite).
_anomaly_outputs.series_input = True
ANOMALY_TINY = dict(window=4, score_stride=2, hidden_size=8, latent_dim=3, epochs=2, batch_size=16,
                    random_state=0, device=DEVICE)


def _gan_outputs(est, n, t, c):
    # TimeGAN's data -> output methods; sampling is covered in test_gan.py.
    return {
        "transform": (n, t, est.latent_dim),  # per-step latent embedding
        "reconstruct": (n, t, c),
        "decision_function": (n,),
        "score_samples": (n,),
    }


# A GAN counts iterations, not epochs, and has no validation split.
GAN_TINY = dict(hidden_size=8, latent_dim=3, num_layers=1, iterations=2, pretrain_iterations=2,
                batch_size=16, random_state=0, device=DEVICE)


ESTIMATORS = [
    # (class, tiny parameters, method -> expected shape for 3-D input)
    (SequenceAutoencoder, TINY, _autoencoder_outputs),
    (RecurrentClusterer, CLUSTERER_TINY, _clusterer_outputs),
    (SequenceAnomalyDetector, ANOMALY_TINY, _anomaly_outputs),
    (RecurrentGAN, GAN_TINY, _gan_outputs),
]
