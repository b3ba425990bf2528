"""Training: checkpoints, determinism, resume after an interruption, recipe checks (tiny runs on 64 images)."""
import math

import pytest
import torch

from fnlib import evaluate, hardware, models, train

RECIPE = train.Recipe(epochs=2, batch_size=16, seed=0)
META = {"arch": "resnet18", "dataset": "mnist"}


def fresh(seed=0):
    torch.manual_seed(seed)
    return models.build("resnet18", "mnist")


def run(data, ckpt_dir=None, recipe=RECIPE, checkpoints=(1, 2), seed=0, test=None, meta=META):
    x, y = data
    model = fresh(seed)
    xt, yt = test if test is not None else (None, None)
    hist = train.fit(model, x, y, xt, yt, checkpoints=checkpoints, ckpt_dir=ckpt_dir, recipe=recipe,
                     device="cpu", progress=False, meta=meta)
    return model, hist


def strip(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def reference(mnist_train64, mnist_small, tmp_path_factory):
    """One uninterrupted 2-epoch run with checkpoints at 1 and 2."""
    d = tmp_path_factory.mktemp("ref")
    model, hist = run(mnist_train64, d, test=mnist_small)
    return model, hist, d


def test_fit_writes_checkpoints_and_history(reference, mnist_small):
    model, hist, d = reference
    assert sorted(p.name for p in d.iterdir()) == ["e1.pt", "e2.pt", "last.pt"]
    assert [r["epoch"] for r in hist] == [1, 2]
    for r in hist:
        assert set(r) == {"epoch", "train_loss", "train_acc", "test_acc", "seconds", "weights"}
        assert math.isfinite(r["train_loss"]) and 0 <= r["train_acc"] <= 100 and r["seconds"] > 0
    # each epoch records the digest of the weights it ended with: the one the pipeline reads off the checkpoint
    from fnlib import pipeline
    assert [r["weights"] for r in hist] == [pipeline.weights_digest(d / f"e{e}.pt") for e in (1, 2)]
    assert hist[0]["weights"] != hist[1]["weights"]
    assert not model.training
    # the last row's test accuracy is the final model's; e2.pt holds the final weights
    assert hist[-1]["test_acc"] == evaluate.accuracy(model, *mnist_small)
    e2 = models.load_checkpoint(d / "e2.pt", "resnet18", "mnist")
    assert same_weights(e2, model)
    state = torch.load(d / "e2.pt", weights_only=True)
    assert state["meta"]["epoch"] == 2 and state["meta"]["arch"] == "resnet18"
    assert state["meta"]["recipe"]["batch_size"] == 16
    e1 = models.load_checkpoint(d / "e1.pt", "resnet18", "mnist")
    assert not same_weights(e1, model)
    assert torch.load(d / "e1.pt", weights_only=True)["meta"]["test_acc"] == hist[0]["test_acc"]


def test_fit_actually_trains(mnist_train64):
    """With a gentle learning rate, 3 epochs on 64 images fit them: the loss falls every epoch."""
    recipe = train.Recipe(epochs=3, batch_size=16, lr=0.01, seed=0)
    model0 = fresh()
    model, hist = run(mnist_train64, recipe=recipe, checkpoints=())
    losses = [r["train_loss"] for r in hist]
    assert losses[0] > losses[1] > losses[2]
    assert hist[-1]["train_acc"] > 80.0
    assert math.isnan(hist[-1]["test_acc"])                    # no test set given
    x, y = mnist_train64
    with torch.no_grad():                                      # batch statistics: the fitted model wins
        before = torch.nn.functional.cross_entropy(model0.train()(x.float() / 255), y).item()
        after = torch.nn.functional.cross_entropy(model.train()(x.float() / 255), y).item()
    assert after < 0.5 * before


def test_fit_is_deterministic(reference, mnist_train64, mnist_small, tmp_path):
    model_ref, hist_ref, _ = reference
    model, hist = run(mnist_train64, tmp_path, test=mnist_small)
    assert strip(hist) == strip(hist_ref)
    assert same_weights(model, model_ref)


def test_other_seed_gives_other_run(reference, mnist_train64):
    model_ref, _, _ = reference
    model, _ = run(mnist_train64, recipe=train.Recipe(epochs=2, batch_size=16, seed=1), checkpoints=())
    assert not same_weights(model, model_ref)


def test_resume_after_interruption(reference, mnist_train64, mnist_small, tmp_path, monkeypatch):
    model_ref, hist_ref, _ = reference
    real_save = train._save

    def save_then_die(obj, path):
        real_save(obj, path)
        if path.name == "last.pt" and obj["epoch"] == 1:
            raise KeyboardInterrupt("simulated interruption after epoch 1")

    monkeypatch.setattr(train, "_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(mnist_train64, tmp_path, test=mnist_small)
    monkeypatch.setattr(train, "_save", real_save)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e1.pt", "last.pt"]
    saved = torch.load(tmp_path / "last.pt", weights_only=False)
    assert saved["epoch"] == 1 and len(saved["history"]) == 1
    # a new process: a differently initialised model, the same folder and recipe
    model, hist = run(mnist_train64, tmp_path, test=mnist_small, seed=123)
    assert [r["epoch"] for r in hist] == [1, 2]
    assert strip(hist) == strip(hist_ref)
    assert hist[0] == saved["history"][0]                      # epoch 1 was not trained again
    assert same_weights(model, model_ref)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e1.pt", "e2.pt", "last.pt"]
    # a finished run returns at once with the same history and weights
    model2, hist2 = run(mnist_train64, tmp_path, test=mnist_small, seed=7)
    assert hist2 == hist
    assert same_weights(model2, model_ref)


def test_last_from_another_recipe_raises(reference, mnist_train64, tmp_path):
    _, _, d = reference
    (tmp_path / "last.pt").write_bytes((d / "last.pt").read_bytes())
    with pytest.raises(ValueError, match="another recipe"):
        run(mnist_train64, tmp_path, recipe=train.Recipe(epochs=2, batch_size=16, seed=0, lr=0.05))
    with pytest.raises(ValueError, match="another recipe"):
        run(mnist_train64, tmp_path, meta={"arch": "resnet50", "dataset": "mnist"})
    with pytest.raises(ValueError, match="another recipe"):
        run(mnist_train64, tmp_path, recipe=train.Recipe(epochs=3, batch_size=16, seed=0))


@pytest.mark.parametrize("checkpoints", [(0,), (3,), (1, 5), (-1, 2)])
def test_bad_checkpoint_epochs_raise(mnist_train64, checkpoints, tmp_path):
    with pytest.raises(ValueError, match="1..2"):
        run(mnist_train64, tmp_path, checkpoints=checkpoints)
    assert not any(tmp_path.iterdir())


def test_bad_training_data_raises():
    m = fresh()
    with pytest.raises(ValueError, match="non-empty"):
        train.fit(m, torch.zeros(0, 1, 28, 28, dtype=torch.uint8), torch.zeros(0, dtype=torch.long),
                  recipe=RECIPE, device="cpu", progress=False)
    with pytest.raises(ValueError, match="equal length"):
        train.fit(m, torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.zeros(3, dtype=torch.long),
                  recipe=RECIPE, device="cpu", progress=False)


def test_recipe_key():
    assert train.Recipe().key() == train.Recipe().key()
    assert train.Recipe(seed=1).key() != train.Recipe().key()
    assert len(train.Recipe().key()) == 16


def test_resolve_device():
    assert hardware.resolve_device("cpu") == torch.device("cpu")
    assert hardware.resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        hardware.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no GPU"):
            hardware.resolve_device("cuda")


def test_predict_and_accuracy_on_a_hand_model():
    class Pick(torch.nn.Module):
        """Predicts the class given by the first pixel (scaled to 0..9)."""

        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            k = (x[:, 0, 0, 0] * 9).round().long()
            return torch.nn.functional.one_hot(k, 10).float() + 0 * self.p

    x = torch.zeros(5, 1, 2, 2, dtype=torch.uint8)
    x[:, 0, 0, 0] = torch.tensor([0, 255, 85, 28, 0], dtype=torch.uint8)    # classes 0, 9, 3, 1, 0
    pred = evaluate.predict(Pick(), x, batch_size=2)
    assert pred.tolist() == [0, 9, 3, 1, 0]
    assert evaluate.accuracy(Pick(), x, torch.tensor([0, 9, 3, 2, 1])) == 60.0
    m = Pick().train()
    evaluate.accuracy(m, x, torch.zeros(5, dtype=torch.long))
    assert m.training                                          # mode restored
    assert evaluate.predict(Pick(), x[:0]).numel() == 0


def test_until_stops_and_a_later_call_resumes_to_the_same_weights(reference, mnist_train64, mnist_small, tmp_path):
    """Staged training (the pipeline's 01_train_e<E>): stopping at epoch 1 and resuming equals one run."""
    model_ref, hist_ref, _ = reference
    x, y = mnist_train64
    lines = []
    part = train.fit(fresh(), x, y, *mnist_small, checkpoints=(1, 2), ckpt_dir=tmp_path, recipe=RECIPE,
                     device="cpu", meta=META, until=1, log=lines.append)
    assert [r["epoch"] for r in part] == [1] and sorted(p.name for p in tmp_path.iterdir()) == ["e1.pt", "last.pt"]
    assert len(lines) == 1 and "epoch 1/2" in lines[0] and "1 epoch left" in lines[0]
    model = fresh(5)
    hist = train.fit(model, x, y, *mnist_small, checkpoints=(1, 2), ckpt_dir=tmp_path, recipe=RECIPE,
                     device="cpu", progress=False, meta=META)
    assert strip(hist) == strip(hist_ref) and same_weights(model, model_ref)
    # asking for an earlier stage of a finished run returns that part of the history, training nothing
    assert train.fit(fresh(), x, y, checkpoints=(1, 2), ckpt_dir=tmp_path, recipe=RECIPE, device="cpu",
                     progress=False, meta=META, until=1) == hist[:1]
    record = train.run_record(tmp_path)
    assert record["epochs_done"] == 2 and record["precision"] == "fp32"
    assert [(s["first_epoch"], s["last_epoch"]) for s in record["sessions"]] == [(1, 1), (2, 2)]
    assert record["seconds"] == pytest.approx(sum(r["seconds"] for r in hist))
    assert record["seconds"] == pytest.approx(sum(s["seconds"] for s in record["sessions"]))


def test_identity_covers_data_limit_seed_recipe_and_code(monkeypatch):
    base = train.identity("resnet18", "mnist", RECIPE, 500)
    assert train.identity("resnet18", "mnist", RECIPE, 500) == base
    others = [train.identity("resnet18", "mnist", RECIPE, 600), train.identity("resnet18", "cifar10", RECIPE, 500),
              train.identity("resnet50", "mnist", RECIPE, 500),
              train.identity("resnet18", "mnist", train.Recipe(epochs=2, batch_size=16, seed=1), 500),
              train.identity("resnet18", "mnist", train.Recipe(epochs=2, batch_size=16, precision="bf16"), 500)]
    monkeypatch.setattr(train, "code_digest", lambda: "other code")
    others.append(train.identity("resnet18", "mnist", RECIPE, 500))
    keys = {train.identity_key(i) for i in others} | {train.identity_key(base)}
    assert len(keys) == len(others) + 1


def test_resume_refuses_a_run_of_other_data(reference, mnist_train64, tmp_path):
    _, _, d = reference
    (tmp_path / "last.pt").write_bytes((d / "last.pt").read_bytes())
    x, y = mnist_train64
    other = train.identity("resnet18", "mnist", RECIPE, 64)
    with pytest.raises(ValueError, match=str(tmp_path)):
        train.fit(fresh(), x, y, ckpt_dir=tmp_path, recipe=RECIPE, device="cpu", progress=False, meta=META,
                  ident=other)


def test_truncated_checkpoint_names_file_and_command(reference, mnist_train64, tmp_path):
    _, _, d = reference
    (tmp_path / "last.pt").write_bytes((d / "last.pt").read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"last\.pt cannot be read.*REMAKE"):
        train.fit(fresh(), *mnist_train64, ckpt_dir=tmp_path, recipe=RECIPE, device="cpu", progress=False,
                  meta=META, remake="REMAKE")
    (tmp_path / "e1.pt").write_bytes((d / "e1.pt").read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"e1\.pt cannot be read.*REMAKE"):
        models.load_checkpoint(tmp_path / "e1.pt", "resnet18", "mnist", remake="REMAKE")


def test_a_checkpoint_epoch_already_trained_past_cannot_be_made(reference, mnist_train64, tmp_path):
    _, _, d = reference
    (tmp_path / "last.pt").write_bytes((d / "last.pt").read_bytes())
    with pytest.raises(ValueError, match="trained past epoch"):
        train.fit(fresh(), *mnist_train64, checkpoints=(1, 2), ckpt_dir=tmp_path, recipe=RECIPE, device="cpu",
                  progress=False, meta=META)
