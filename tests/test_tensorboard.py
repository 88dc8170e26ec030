"""TensorBoardLogger and show_tensorboard: read the event files back, check what a dashboard would show,
and which way the logs are shown where the notebook runs (no TensorBoard server is ever started)."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: no window in a test
import matplotlib.pyplot as plt  # noqa: E402

# Resolve pyplot's backend now: done later, it would ask the stand-in IPython shell below for hooks.
plt.switch_backend("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from torch import nn  # noqa: E402

from ldl.train.callbacks import CancelFit, Callback  # noqa: E402
from ldl.train.tensorboard import TensorBoardLogger  # noqa: E402
from ldl.widgets.tensorboard import (  # noqa: E402
    histogram_figure,
    read_histograms,
    show_tensorboard,
    tensorboard_bins,
    tensorboard_mode,
)
from ldl.train.trainer import Trainer  # noqa: E402


def batches(num_batches: int = 3, batch_size: int = 8, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(x (B, 8) float32, y (B,) int64) batches of two separable classes."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(num_batches):
        y = torch.randint(0, 2, (batch_size,), generator=g)
        out.append((torch.randn(batch_size, 8, generator=g) + (2.0 * y - 1.0).unsqueeze(1), y))
    return out


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))


def read_events(log_dir: Path) -> EventAccumulator:
    # size_guidance 0: keep every event (the default keeps a sample of each tag).
    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def fit(log_dir: Path, epochs: int = 2, callbacks: tuple[Callback, ...] = (), **logger_kwargs) -> Trainer:
    logger = TensorBoardLogger(log_dir, **logger_kwargs)
    trainer = Trainer(tiny_model(), device="cpu", progress=False, verbose=False, callbacks=[logger, *callbacks])
    trainer.fit(batches(), batches(seed=1), epochs=epochs)
    return trainer


def test_scalars_histograms_and_images_are_written(tmp_path: Path) -> None:
    images = torch.rand(6, 3, 16, 16)
    trainer = fit(tmp_path, images=images)
    tags = read_events(tmp_path).Tags()

    expected_scalars = {"loss/train", "loss/val", "accuracy/train", "accuracy/val_top1", "accuracy/val_top5", "lr"}
    assert expected_scalars <= set(tags["scalars"])
    accumulator = read_events(tmp_path)
    for tag in expected_scalars:
        assert [event.step for event in accumulator.Scalars(tag)] == [1, 2]
    logged = [event.value for event in accumulator.Scalars("loss/val")]
    assert logged == pytest.approx(trainer.history["val_loss"], rel=1e-6)

    names = [name for name, _ in trainer.model.named_parameters()]
    assert set(tags["histograms"]) == {f"weights/{n}" for n in names} | {f"grads/{n}" for n in names}
    for tag in tags["histograms"]:
        assert [event.step for event in accumulator.Histograms(tag)] == [1, 2]
    assert tags["images"] == ["images"]
    assert len(accumulator.Images("images")) == 1


def test_gradients_are_those_of_the_last_batch(tmp_path: Path) -> None:
    class KeepLastGradients(Callback):
        def on_batch_end(self, trainer: Trainer) -> None:
            self.grad = trainer.model[0].weight.grad.clone()

    keeper = KeepLastGradients()
    fit(tmp_path, epochs=1, callbacks=(keeper,))
    histogram = read_events(tmp_path).Histograms("grads/0.weight")[0].histogram_value
    assert histogram.num == keeper.grad.numel()
    assert histogram.sum == pytest.approx(float(keeper.grad.sum()), rel=1e-4, abs=1e-6)


def test_histogram_every_and_switching_histograms_off(tmp_path: Path) -> None:
    fit(tmp_path / "every2", epochs=3, histogram_every=2)
    steps = [event.step for event in read_events(tmp_path / "every2").Histograms("weights/0.weight")]
    assert steps == [2, 3]  # every 2nd epoch, and the last one

    fit(tmp_path / "off", histograms=False)
    assert read_events(tmp_path / "off").Tags()["histograms"] == []


def test_writer_is_closed_after_a_cancelled_fit(tmp_path: Path) -> None:
    class StopAfterFirstEpoch(Callback):
        def on_epoch_end(self, trainer: Trainer) -> None:
            raise CancelFit("enough")

    logger = TensorBoardLogger(tmp_path)
    trainer = Trainer(tiny_model(), device="cpu", progress=False, verbose=False,
                      callbacks=[logger, StopAfterFirstEpoch()])
    trainer.fit(batches(), epochs=3)
    assert logger.writer is None
    assert [event.step for event in read_events(tmp_path).Scalars("loss/train")] == [1]


@pytest.mark.parametrize("images", [torch.rand(3, 16, 16), torch.rand(4, 5, 8, 8), [1, 2, 3]])
def test_bad_images_are_refused_with_the_expected_shape(images, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        TensorBoardLogger(tmp_path, images=images)


def test_uint8_images_are_accepted(tmp_path: Path) -> None:
    fit(tmp_path, epochs=1, images=torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8))
    assert read_events(tmp_path).Tags()["images"] == ["images"]


def test_fits_after_the_first_go_on_counting_steps(tmp_path: Path) -> None:
    """Lesson 3 fits one epoch at a time: TensorBoard must see steps 1, 2, 3, not step 1 three times."""
    logger = TensorBoardLogger(tmp_path, images=torch.rand(2, 3, 8, 8))
    trainer = Trainer(tiny_model(), device="cpu", progress=False, verbose=False, callbacks=[logger])
    for _ in range(3):
        trainer.fit(batches(), epochs=1)
    accumulator = read_events(tmp_path)
    # sorted: one event file per fit, read in name order, which need not be the order written
    assert sorted(event.step for event in accumulator.Histograms("grads/0.weight")) == [1, 2, 3]
    assert sorted(event.step for event in accumulator.Scalars("loss/train")) == [1, 2, 3]
    assert len(accumulator.Images("images")) == 1  # the same images: written once


# -- show_tensorboard: where it runs decides how --------------------------------------------

class FakeKernel:
    """An ipykernel's execute request, as a front end (allow_stdin=True) or papermill (False) sends it."""

    def __init__(self, allow_stdin: bool) -> None:
        self.allow_stdin = allow_stdin

    def get_parent(self, channel: str) -> dict:
        return {"content": {"allow_stdin": self.allow_stdin}}


class RecordingShell:
    """Stands in for get_ipython(): records line magics instead of starting a TensorBoard server."""

    def __init__(self, allow_stdin: bool = True) -> None:
        self.kernel = FakeKernel(allow_stdin)
        self.magics: list[str] = []

    def run_line_magic(self, name: str, line: str) -> None:
        self.magics.append(f"{name} {line}")


@pytest.fixture
def where(monkeypatch: pytest.MonkeyPatch):
    """Set up a place to run in: ``where(shell, env={...}, colab=False, proxy=False)``."""
    import IPython

    for name in ("BINDER_SERVICE_HOST", "BINDER_LAUNCH_HOST", "JUPYTERHUB_SERVICE_PREFIX",
                 "LDL_STATIC_TENSORBOARD", "TENSORBOARD_PROXY_URL"):
        monkeypatch.delenv(name, raising=False)

    def place(shell: RecordingShell | None, env: dict[str, str] | None = None, colab: bool = False,
              proxy: bool = False) -> RecordingShell | None:
        monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
        if colab:
            monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
        # None in sys.modules makes an import fail: jupyter_server_proxy absent.
        monkeypatch.setitem(sys.modules, "jupyter_server_proxy",
                            types.ModuleType("jupyter_server_proxy") if proxy else None)
        return shell

    return place


HUB_PREFIX = "/user/ldl-course-ldl-x1y2/"


@pytest.mark.parametrize(
    ("shell", "env", "colab", "proxy", "mode"),
    [
        (RecordingShell(), {}, True, False, "colab"),
        (RecordingShell(), {"BINDER_SERVICE_HOST": "10.0.0.1", "JUPYTERHUB_SERVICE_PREFIX": HUB_PREFIX}, False, True,
         "binder"),
        (RecordingShell(), {"BINDER_LAUNCH_HOST": "https://mybinder.org/"}, False, True, "binder"),
        (RecordingShell(), {"JUPYTERHUB_SERVICE_PREFIX": HUB_PREFIX}, False, True, "binder"),  # a hub with the proxy
        (RecordingShell(), {"JUPYTERHUB_SERVICE_PREFIX": HUB_PREFIX}, False, False, "jupyter"),
        (RecordingShell(), {"BINDER_SERVICE_HOST": "10.0.0.1"}, False, False, "static"),  # unreachable dashboard
        (RecordingShell(), {}, False, False, "jupyter"),  # JupyterLab on one's own machine
        (RecordingShell(), {}, False, True, "jupyter"),
        (RecordingShell(allow_stdin=False), {}, True, False, "static"),  # papermill, nbval, nbconvert
        (None, {}, False, False, "static"),  # a script
        (RecordingShell(), {"LDL_STATIC_TENSORBOARD": "1"}, True, False, "static"),
    ],
    ids=["colab", "binder", "binder-launch-host", "hub-proxy", "hub-no-proxy", "binder-no-proxy", "local",
         "local-with-proxy", "headless", "script", "forced-static"],
)
def test_the_mode_follows_where_it_runs(where, shell, env, colab, proxy, mode) -> None:
    where(shell, env, colab=colab, proxy=proxy)
    assert tensorboard_mode() == mode


@pytest.fixture(scope="module")
def three_steps(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], nn.Module]:
    """A run of three one-epoch fits of the tiny model: (its folder, its parameter names, the model)."""
    log_dir = tmp_path_factory.mktemp("runs") / "tiny"
    model = tiny_model()
    trainer = Trainer(model, device="cpu", progress=False, verbose=False, callbacks=[TensorBoardLogger(log_dir)])
    for _ in range(3):
        trainer.fit(batches(), batches(seed=1), epochs=1)
    return log_dir, [name for name, _ in model.named_parameters()], model


@pytest.mark.parametrize(("colab", "env"), [(True, {}), (False, {})], ids=["colab", "local"])
def test_colab_and_local_jupyter_use_the_tensorboard_magic(where, three_steps, colab, env) -> None:
    log_dir = three_steps[0]
    shell = where(RecordingShell(), env, colab=colab)
    assert show_tensorboard(log_dir) is None
    assert shell.magics == ["load_ext tensorboard", f"tensorboard --logdir {log_dir}"]
    assert "TENSORBOARD_PROXY_URL" not in os.environ


def test_binder_points_tensorboard_through_jupyter_server_proxy(where, three_steps, monkeypatch) -> None:
    log_dir = three_steps[0]
    shell = where(RecordingShell(), {"BINDER_SERVICE_HOST": "10.0.0.1", "JUPYTERHUB_SERVICE_PREFIX": HUB_PREFIX},
                  proxy=True)
    show_tensorboard(log_dir)
    assert os.environ["TENSORBOARD_PROXY_URL"] == HUB_PREFIX + "proxy/%PORT%/"
    assert shell.magics == ["load_ext tensorboard", f"tensorboard --logdir {log_dir}"]

    # TensorBoard's own notebook code, reading that variable, must aim its iframe at the proxy.
    import IPython.display
    from tensorboard import notebook

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    notebook._display_ipython(port=6006, height=800, display_handle=None)
    assert f'"{HUB_PREFIX}proxy/6006/"' in shown[0].data


def test_without_a_front_end_the_histograms_are_drawn_and_no_server_starts(where, three_steps, monkeypatch,
                                                                           capsys) -> None:
    import IPython.display

    log_dir, names, _ = three_steps
    shell = where(RecordingShell(allow_stdin=False), colab=True)
    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    show_tensorboard(log_dir)
    assert shell.magics == []
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1 and str(log_dir) in printed and f"tensorboard --logdir {log_dir}" in printed
    [figure] = shown
    assert len(figure.axes) == 2 * len(names)
    plt.close(figure)


def test_the_static_figure_has_a_panel_per_tag_and_a_line_per_step(three_steps) -> None:
    log_dir, names, _ = three_steps
    tags = read_events(log_dir).Tags()["histograms"]
    figure = histogram_figure(log_dir)
    assert sorted(ax.get_title() for ax in figure.axes) == sorted(tags)
    assert sorted(tags) == sorted([f"weights/{n}" for n in names] + [f"grads/{n}" for n in names])
    for ax in figure.axes:
        assert len(ax.lines) == 3  # steps 1, 2, 3
        assert [line.get_label() for line in ax.lines] == ["step 1", "step 2", "step 3"]
    plt.close(figure)


def test_the_static_histograms_hold_every_value_tensorboard_counted(three_steps) -> None:
    log_dir, _, model = three_steps
    histograms = read_histograms(log_dir)
    centers, counts = tensorboard_bins([buckets for _, buckets in histograms["weights/0.weight"]])
    assert centers.shape == (30,) and counts.shape == (3, 30)
    # Rebinning moves counts between bins, never loses one: each step holds all 8 * 16 weights.
    assert counts.sum(axis=1) == pytest.approx([model[0].weight.numel()] * 3)
    half_bin = (centers[1] - centers[0]) / 2  # the bins span every step's values, the last included
    last = model[0].weight.detach()
    assert centers[0] - half_bin <= float(last.min()) + 1e-6 and centers[-1] + half_bin >= float(last.max()) - 1e-6


def test_tensorboard_bins_share_counts_by_overlap_and_keep_zero_width_buckets() -> None:
    centers, counts = tensorboard_bins([np.array([[0.0, 1.0, 10.0], [1.0, 3.0, 4.0]])], bin_count=3)
    assert centers == pytest.approx([0.5, 1.5, 2.5])
    assert counts[0] == pytest.approx([10.0, 2.0, 2.0])
    # A tensor of equal values is one zero-width bucket: TensorBoard widens the range around it.
    centers, counts = tensorboard_bins([np.array([[0.5, 0.5, 7.0]])], bin_count=4)
    assert counts.sum() == 7.0 and centers[0] < 0.5 < centers[-1]


def test_a_missing_or_empty_log_folder_is_named(where, tmp_path: Path) -> None:
    where(RecordingShell())
    missing = tmp_path / "runs" / "never_written"
    for call in (show_tensorboard, histogram_figure):
        with pytest.raises(FileNotFoundError, match="never_written"):
            call(missing)
    empty = tmp_path / "empty_run"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="empty_run.*no event files"):
        show_tensorboard(empty)


def test_a_folder_of_runs_asks_for_one_run(three_steps) -> None:
    with pytest.raises(ValueError, match="tiny"):
        histogram_figure(three_steps[0].parent)


def test_a_deep_networks_static_overview_keeps_first_middle_and_last_weights() -> None:
    from ldl.widgets.tensorboard import overview_tags

    layers = [f"net.{i}" for i in range(0, 40, 2)]  # 20 linear layers, as lesson 3's deep MLP
    tags = [f"{kind}/{layer}.{part}" for layer in layers for kind in ("weights", "grads") for part in ("weight", "bias")]
    assert overview_tags(tags) == [
        "weights/net.0.weight", "grads/net.0.weight",
        "weights/net.20.weight", "grads/net.20.weight",
        "weights/net.38.weight", "grads/net.38.weight",
    ]
    few = tags[:8]
    assert overview_tags(few) == few  # a small network is shown whole
