"""Token sequences: the vocabulary, reading them, and every estimator that accepts them
(embedding input, categorical output, per-step negative log-likelihoods)."""

import numpy as np
import pytest

import ursa
from conftest import DEVICE
from ursa.data import TokenSequences, Vocabulary, is_token_input, read_tokens
from ursa.metrics import adjusted_rand_score

TINY = dict(hidden_size=16, random_state=0, device=DEVICE, verbose=False)


def cycles(n, alphabet, seed=0, low=6, high=12):
    """Sessions that cycle through ``alphabet`` from a random start, of random length."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        start, length = int(rng.integers(len(alphabet))), int(rng.integers(low, high + 1))
        out.append([alphabet[(start + k) % len(alphabet)] for k in range(length)])
    return out


# ----------------------------------------------------------------------------- vocabulary
def test_vocabulary_orders_by_count_and_round_trips():
    X = [["b", "a", "b"], ["c", "b"]]
    vocab = Vocabulary().fit(X)
    assert vocab.tokens_ == ["b", "a", "c"] and len(vocab) == 5  # + padding and unknown
    seqs = vocab.encode(X)
    assert seqs.values.shape == (2, 3, 1) and seqs.lengths.tolist() == [3, 2]
    assert seqs.values[:, :, 0].tolist() == [[2, 3, 2], [4, 2, 0]]  # 0 pads
    assert vocab.decode(seqs.values, seqs.lengths) == X
    again = Vocabulary.from_state(vocab.get_state())
    assert again.encode(X).values.tolist() == seqs.values.tolist()


def test_unknown_tokens_map_to_the_unknown_id_or_raise():
    vocab = Vocabulary().fit([["a", "b"]])
    assert vocab.encode([["a", "z"]]).values[0, :, 0].tolist() == [2, 1]
    assert vocab.decode([[2, 1]]) == [["a", "<unk>"]]
    strict = Vocabulary(unknown="error").fit([["a", "b"]])
    with pytest.raises(ValueError, match=r"X\[0\]\[1\] is 'z'.*unknown='map'"):
        strict.encode([["a", "z"]])


def test_min_count_and_max_size_send_rare_tokens_to_unknown():
    X = [list("aaabbc")]
    assert Vocabulary(min_count=2).fit(X).tokens_ == ["a", "b"]
    assert Vocabulary(max_size=1).fit(X).tokens_ == ["a"]


def test_integer_tokens_and_strings_as_characters():
    ints = TokenSequences([np.array([3, 5, 3]), [5, 7]])
    assert is_token_input(ints) and not is_token_input([np.array([3, 5, 3])])
    vocab = Vocabulary().fit(ints)
    assert vocab.kind_ == "int" and vocab.decode(vocab.encode(ints).values, [3, 2]) == \
        [[3, 5, 3], [5, 7]]
    assert is_token_input(["word", "other"])
    assert Vocabulary().fit(["abca"]).tokens_ == ["a", "b", "c"]


@pytest.mark.parametrize("X, error, match", [
    (TokenSequences([[1, 2.5]]), TypeError, r"X\[0\]\[1\] is 2.5 \(float\)"),
    ([["a", ""]], ValueError, r"X\[0\]\[1\] is an empty string"),
    ([["a"], []], ValueError, r"X\[1\] is empty"),
    (["ab", ""], ValueError, r"X\[1\] is empty"),
    ([["a", 1]], TypeError, r"X\[0\] mixes string and integer"),
    (TokenSequences([[1], ["a"]]), TypeError, r"X\[1\] holds str tokens but X\[0\] holds int"),
    ("abc", TypeError, "single string"),
])
def test_bad_token_input_names_the_item_and_the_fix(X, error, match):
    with pytest.raises(error, match=match):
        Vocabulary().fit(X)


def test_read_tokens_splits_lines(tmp_path):
    path = tmp_path / "sessions.txt"
    path.write_text("5 5 22\n\n11  9\n", encoding="utf-8")
    assert read_tokens(path) == [["5", "5", "22"], ["11", "9"]]
    assert read_tokens(path, split="chars")[1] == ["1", "1", " ", " ", "9"]
    (tmp_path / "latin.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not utf-8 text.*encoding="):
        read_tokens(tmp_path / "latin.txt")


# ----------------------------------------------------------------------------- autoencoder
@pytest.fixture(scope="module")
def token_ae():
    X = cycles(120, list("abcde"))
    return ursa.SequenceAutoencoder(latent_dim=8, epochs=60, batch_size=16, validation_fraction=0.0,
                                    **TINY).fit(X), X


def test_autoencoder_learns_to_rebuild_tokens(token_ae):
    ae, X = token_ae
    assert ae.vocabulary_.tokens_ and len(ae.vocabulary_) == 7
    first, last = ae.history_[0]["train_loss"], ae.history_[-1]["train_loss"]
    assert last < 0.1 * first  # cross-entropy, starting near log(7)
    rebuilt = ae.reconstruct(X[:20])
    correct = np.mean([a == b for x, r in zip(X[:20], rebuilt) for a, b in zip(x, r)])
    assert correct > 0.9  # chance: 1/5
    assert [len(r) for r in rebuilt] == [len(x) for x in X[:20]]
    assert ae.transform(X).shape == (120, 8)
    decoded = ae.inverse_transform(ae.transform(X[:3]), 5)
    assert len(decoded) == 3 and all(len(d) == 5 and set(d) <= set("abcde<unk>") for d in decoded)


def test_token_scores_are_negative_log_likelihoods_and_unknown_tokens_score_high(token_ae):
    ae, X = token_ae
    steps = ae.step_errors(X[:5])
    assert [len(s) for s in steps] == [len(x) for x in X[:5]] and all((s >= 0).all() for s in steps)
    np.testing.assert_allclose(ae.decision_function(X[:5]), [s.mean() for s in steps], rtol=1e-5)
    odd = [list(X[0]), list(X[0])]
    odd[1][3] = "q"  # never seen: the unknown id, which the decoder never emits
    errors = ae.step_errors(odd)
    assert errors[1][3] > 5 * errors[0][3] and errors[1][3] > 1.0


def test_padding_does_not_change_a_sequence_s_outputs(token_ae):
    ae, X = token_ae
    short = [X[0][:6]]
    alone = ae.transform(short), ae.decision_function(short)
    batched = ae.transform(short + [X[1] + X[2]]), ae.decision_function(short + [X[1] + X[2]])
    np.testing.assert_allclose(alone[0][0], batched[0][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(alone[1][0], batched[1][0], rtol=1e-5)


def test_token_model_round_trips_through_a_file(token_ae, tmp_path):
    ae, X = token_ae
    path = ae.save(tmp_path / "tokens.ursa")
    loaded = ursa.load(path)
    assert loaded.vocabulary_.tokens_ == ae.vocabulary_.tokens_
    np.testing.assert_array_equal(loaded.transform(X[:10]), ae.transform(X[:10]))
    assert loaded.reconstruct(X[:3]) == ae.reconstruct(X[:3])


def test_token_and_numeric_models_refuse_the_other_kind(token_ae):
    ae, _ = token_ae
    with pytest.raises(TypeError, match="int tokens, but the vocabulary was fitted on str"):
        ae.transform(TokenSequences([[1, 2]]))
    numeric = ursa.SequenceAutoencoder(epochs=1, **TINY).fit(np.zeros((4, 5)))
    with pytest.raises(TypeError, match="holds token sequences, but this SequenceAutoencoder "
                                        "was fitted on numeric"):
        numeric.transform([["a", "b"]])
    with pytest.raises(ValueError, match="private training of the token embedding"):
        ursa.SequenceAutoencoder(epochs=1, scaling=None, privacy={"epsilon": 3.0},
                                 **TINY).fit([["a", "b"]])


def test_refitting_on_numbers_forgets_the_vocabulary(token_ae):
    ae, X = token_ae
    model = ursa.SequenceAutoencoder(epochs=1, **TINY).fit(X[:10])
    assert model.vocabulary_ is not None
    model.fit(np.zeros((4, 5)))
    assert not hasattr(model, "vocabulary_") and model.transform(np.ones((2, 5))).shape == (2, 16)


# ----------------------------------------------------------------------------- detector
@pytest.fixture(scope="module")
def session_detector():
    train = cycles(200, list("abcdef"), seed=1, low=8, high=12)
    det = ursa.SequenceAnomalyDetector(window=None, epochs=30, batch_size=32,
                                       **TINY).fit(train)
    return det, train


def test_detector_finds_a_planted_abnormal_session(session_detector):
    det, _ = session_detector
    test = cycles(30, list("abcdef"), seed=2, low=8, high=12)
    planted = {3: test[3][::-1],                 # the order reversed
               11: test[11][:4] + ["z"] + test[11][5:],  # a token never seen
               20: test[20][:2]}                 # cut short: it ends where no session does
    for i, session in planted.items():
        test[i] = session
    scores = det.decision_function(test)
    assert scores.shape == (30,)
    normal = np.delete(scores, list(planted))
    assert all(scores[i] > normal.max() for i in planted)
    flags = det.predict(test)
    assert all(flags[i] == 1 for i in planted) and flags.sum() <= len(planted) + 2
    steps = det.step_scores(test)
    assert [len(s) for s in steps] == [len(s) for s in test]
    assert int(np.argmax(steps[11])) == 4  # the unseen token is the surprising step
    np.testing.assert_allclose([s.max() for s in steps], scores, rtol=1e-5)
    assert steps[20][-1] > 3 * np.median([s[-1] for s in steps])  # it ends where none does
    det.set_params(session_score="mean")
    np.testing.assert_allclose([s.mean() for s in steps], det.decision_function(test),
                               rtol=1e-5)
    det.set_params(session_score="max")


def test_session_detector_thresholds_its_training_sessions_and_round_trips(session_detector,
                                                                           tmp_path):
    det, train = session_detector
    assert det.decision_scores_.shape == (len(train),) and det.labels_.shape == (len(train),)
    assert det.window_ is None
    loaded = ursa.load(det.save(tmp_path / "sessions.ursa"))
    np.testing.assert_array_equal(loaded.decision_function(train[:20]),
                                  det.decision_function(train[:20]))
    for method in (lambda d: d.window_scores(train), lambda d: d.explain(train[0]),
                   lambda d: d.stream()):
        with pytest.raises(ValueError, match="fitted with window=None"):
            method(loaded)


def test_session_detector_refuses_privacy():
    with pytest.raises(ValueError, match="privacy needs window set to a number of steps"):
        ursa.SequenceAnomalyDetector(window=None, scaling=None, channels="all",
                                     privacy={"epsilon": 3.0}, **TINY).fit(np.zeros((8, 10)))


def test_session_detector_on_numeric_sessions_ranks_a_broken_one_first():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 2 * np.pi, 30)
    train = [np.sin(t + p) + 0.05 * rng.standard_normal(30) for p in rng.uniform(0, 6, 80)]
    det = ursa.SequenceAnomalyDetector(window=None, epochs=30, batch_size=16, **TINY).fit(train)
    test = [np.sin(t + p) for p in rng.uniform(0, 6, 10)]
    test[4] = test[4].copy()
    test[4][15:20] += 3.0  # a level no normal session reaches
    scores = det.decision_function(test)
    assert int(np.argmax(scores)) == 4
    assert det.step_scores(np.stack(test)).shape == (10, 30)


def test_detector_scores_every_step_of_a_long_token_stream():
    stream = ["abcdefgh"[i % 8] for i in range(2600)]
    det = ursa.SequenceAnomalyDetector(window=16, encoder="rnn", epochs=10, **TINY).fit(
        [stream[:1600]])
    assert det.vocabulary_.tokens_ and det.channels_.tolist() == [0]
    test = list(stream)
    test[2000] = "z"                   # a token never seen
    test[2300:2304] = ["a"] * 4        # a repetition the stream never makes
    (scores,) = det.decision_function([test])
    assert scores.shape == (2600,)
    top = np.argsort(scores)[-40:]
    assert np.any(np.abs(top - 2000) < 16) and np.any(np.abs(top - 2301) < 16)
    assert scores[100:1500].max() < scores[2000]
    explanation = det.explain([test[1900:2100]])
    assert explanation.attributions.shape == (200, 1)
    with pytest.raises(ValueError, match="fewer than window=16"):
        det.decision_function([test[:10]])
    with pytest.raises(ValueError, match="token streams"):
        det.stream()
    refit = det.fit(np.sin(np.arange(400) / 5.0))  # numbers again: the vocabulary goes
    assert not hasattr(refit, "vocabulary_") and refit.decision_function(
        np.sin(np.arange(100) / 5.0)).shape == (100,)


# ----------------------------------------------------------------------------- clusterer
def test_clusterer_separates_token_sequences_by_their_alphabet():
    X = cycles(40, list("abcd"), seed=3) + cycles(40, list("wxyz"), seed=4)
    truth = np.r_[np.zeros(40), np.ones(40)]
    model = ursa.RecurrentClusterer(n_clusters=2, epochs=10, max_steps=60, clustering_epochs=5,
                                    batch_size=16, **TINY).fit(X)
    assert model.pool_size_ == 1 and not model.differences_ and model.encoder_ == "rnn"
    assert adjusted_rand_score(truth, model.labels_) > 0.9
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    with pytest.raises(ValueError, match="pool must be 'auto' or 1"):
        ursa.RecurrentClusterer(n_clusters=2, pool=4, **TINY).fit(X)


# ----------------------------------------------------------------------------- generator
def test_gan_samples_token_sequences_of_the_training_lengths(tmp_path):
    X = cycles(60, list("abcd"), seed=5, low=5, high=8)
    gan = ursa.RecurrentGAN(**{**TINY, "hidden_size": 8}, latent_dim=4, num_layers=1,
                            iterations=20, pretrain_iterations=20, batch_size=16).fit(X)
    samples = gan.sample(30, random_state=1)
    assert len(samples) == 30 and all(set(s) <= set("abcd") for s in samples)
    assert {len(s) for s in samples} <= {len(x) for x in X}
    assert gan.sample(30, random_state=1) == samples
    assert [len(r) for r in gan.reconstruct(X[:4])] == [len(x) for x in X[:4]]
    assert gan.decision_function(X[:4]).shape == (4,)
    loaded = ursa.load(gan.save(tmp_path / "gan.ursa"))
    assert loaded.sample(30, random_state=1) == samples
    assert len(gan.sample(3, n_timesteps=12, random_state=0)[0]) == 12


def test_token_explanations_sum_to_the_score(token_ae):
    ae, X = token_ae
    explanation = ae.explain(X[:4])
    assert explanation.method == "error" and [a.shape for a in explanation.attributions] == \
        [(len(x),) for x in X[:4]]
    np.testing.assert_allclose([a.sum() for a in explanation.attributions],
                               ae.decision_function(X[:4]), rtol=1e-4)
    assert [a.shape for a in ae.explain(X[:2], method="occlusion").attributions] == \
        [(len(x),) for x in X[:2]]
    with pytest.raises(ValueError, match="integrated-gradients"):
        ae.explain(X[:2], method="integrated-gradients")


def test_evaluate_and_report_describe_token_models(token_ae, session_detector):
    from ursa.metrics import evaluate
    from ursa.report import build_report

    ae, X = token_ae
    metrics = evaluate(ae, X[:30])
    assert metrics["tokens rebuilt exactly"] > 0.9
    assert metrics["per-sequence negative log-likelihood, median"] >= 0
    det, train = session_detector
    labels = np.r_[np.zeros(20), np.ones(2)]
    found = evaluate(det, train[:20] + [["z", "z"], ["a"]], labels)
    assert found["flagged sessions"] >= 2 and found["AUC-ROC"] == 1.0
    page = build_report(ae, X[:30], verbose=False)
    assert "tokens rebuilt exactly" in page and "known tokens" in page
