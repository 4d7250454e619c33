"""The training loop: balanced batches, loss decrease, and resume after a kill."""

import numpy as np
import pytest
import torch

import lhcflow.training.trainer as trainer
from lhcflow.training.trainer import TrainingConfig, TrainingData, epoch_batches, evaluate, train


class GaussianModel(torch.nn.Module):
    """A conditional Gaussian with learnable mean and log-width: the simplest generator."""

    def __init__(self, dims_in=2, dims_c=1):
        super().__init__()
        self.dims_in, self.dims_c = dims_in, dims_c
        self.net = torch.nn.Linear(dims_c, 2 * dims_in)

    def log_prob(self, x, c):
        mu, log_sigma = self.net(c).chunk(2, dim=1)
        return (-0.5 * ((x - mu) / log_sigma.exp()) ** 2 - log_sigma - 0.5 * np.log(2 * np.pi)).sum(1)

    def loss(self, x, c, weight=None):
        nll = -self.log_prob(x, c)
        if weight is None:
            return nll.mean()
        return (weight / weight.sum() * nll).sum()

    def kl(self):
        return torch.zeros(())


def data(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.integers(0, 2, n)[:, None].astype(float)
    x = rng.normal(3.0 * c, 0.5, (n, 2))
    return TrainingData(x=x, c=c, group=c[:, 0].astype(int))


def test_balanced_batches_hold_groups_equally():
    d = data()
    d.group[:] = np.where(np.arange(len(d)) < 100, 0, 1)  # a rare group of 100 events
    batches = epoch_batches(d, 64, np.random.default_rng(1), balance=True)
    assert len(batches) == 32
    for b in batches:
        assert (d.group[b] == 0).sum() == (d.group[b] == 1).sum() == 32


def test_training_decreases_loss_and_learns_condition(tmp_path):
    torch.manual_seed(0)
    model = GaussianModel()
    cfg = TrainingConfig(epochs=30, batch_size=128, lr_start=1e-2, lr_max=1e-1, seed=3)
    history = train(model, data(), cfg, tmp_path / "ckpt.pt", val_data=data(500, 1), progress=False)
    assert history.train_loss[-1] < history.train_loss[0] - 1.0
    mu = model.net(torch.tensor([[0.0], [1.0]])).chunk(2, dim=1)[0].detach().numpy()
    np.testing.assert_allclose(mu.mean(axis=1), [0.0, 3.0], atol=0.15)


def train_killed_after(epoch: int, monkeypatch, *args, **kwargs) -> None:
    """``train(GaussianModel(), *args)`` killed (as by SIGTERM) right after the checkpoint of ``epoch`` (1-based)."""
    save = trainer.save_checkpoint

    def killed(path, **state):
        save(path, **state)
        if state["epoch"] == epoch - 1:
            raise KeyboardInterrupt("SIGTERM from the batch system")
    monkeypatch.setattr(trainer, "save_checkpoint", killed)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        train(GaussianModel(), *args, progress=False, **kwargs)
    monkeypatch.setattr(trainer, "save_checkpoint", save)


def test_resume_after_kill_continues_and_matches_uninterrupted_run(tmp_path, monkeypatch):
    cfg = TrainingConfig(epochs=4, batch_size=256, lr_start=1e-3, lr_max=1e-2, seed=5)
    torch.manual_seed(0)
    reference = GaussianModel()
    train(reference, data(), cfg, tmp_path / "ref.pt", progress=False)
    train_killed_after(2, monkeypatch, data(), cfg, tmp_path / "ckpt.pt")

    torch.manual_seed(123)  # a fresh process: different initial weights, overwritten by the checkpoint
    resumed = GaussianModel()
    history = train(resumed, data(), cfg, tmp_path / "ckpt.pt", progress=False)
    assert history.epoch == [1, 2, 3, 4]
    for a, b in zip(resumed.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b)


def shifted_val(n=500, seed=1):
    """Validation events from another distribution (mean c, width 1): fitting the training set (mean 3c,
    width 0.5) first lowers, then raises their loss, as overtraining does."""
    rng = np.random.default_rng(seed)
    c = rng.integers(0, 2, n)[:, None].astype(float)
    return TrainingData(x=rng.normal(1.0 * c, 1.0, (n, 2)), c=c)


OVERFIT = TrainingConfig(epochs=12, batch_size=64, lr_start=1e-2, lr_max=1e-1, seed=2)


def test_training_ends_in_the_best_validation_state(tmp_path):
    torch.manual_seed(0)
    model = GaussianModel()
    history = train(model, data(200), OVERFIT, tmp_path / "ckpt.pt", val_data=shifted_val(), progress=False)
    best = int(np.argmin(history.val_loss))
    assert history.val_loss[-1] > history.val_loss[best] + 1.0  # the validation loss went up again
    # the returned weights are those of the best epoch: re-evaluating them gives its validation loss
    assert evaluate(model, shifted_val(), torch.device("cpu"), 200) == pytest.approx(history.val_loss[best], rel=1e-6)
    assert history.best_epoch == best + 1 < OVERFIT.epochs


def test_resumed_training_keeps_the_best_state_of_the_killed_run(tmp_path, monkeypatch):
    """Killed after epoch 7, past the best epoch (4): the best state comes back from the checkpoint, and the
    resumed training ends bitwise in the state of the uninterrupted one."""
    torch.manual_seed(0)
    reference = GaussianModel()
    ref_history = train(reference, data(200), OVERFIT, tmp_path / "ref.pt", val_data=shifted_val(), progress=False)
    train_killed_after(7, monkeypatch, data(200), OVERFIT, tmp_path / "ckpt.pt", val_data=shifted_val())

    torch.manual_seed(123)
    resumed = GaussianModel()
    history = train(resumed, data(200), OVERFIT, tmp_path / "ckpt.pt", val_data=shifted_val(), progress=False)
    for a, b in zip(resumed.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(a, b)
    best = evaluate(reference, shifted_val(), torch.device("cpu"), 200)
    assert best == pytest.approx(min(ref_history.val_loss), rel=1e-6) and best < ref_history.val_loss[-1] - 1.0
    assert history.epoch == list(range(1, 13)) and history.best_epoch == ref_history.best_epoch < 7


def test_nan_inputs_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        TrainingData(x=np.array([[np.nan, 1.0]]), c=np.zeros((1, 1)))


def test_training_config_refuses_unknown_keys():
    """A misspelt key is an error naming it, not a silently used default."""
    from lhcflow.errors import InputError

    assert TrainingConfig.from_dict({"epochs": 3, "betas": [0.9, 0.999]}).betas == (0.9, 0.999)
    with pytest.raises(InputError, match=r"unknown training setting\(s\) 'epoch' \(did you mean 'epochs'\?\)"):
        TrainingConfig.from_dict({"epoch": 3})
