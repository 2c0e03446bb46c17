"""The CNN: a digital conv layer, channel-wise goodness and directions, and training it end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from drivers.convolution import Conv2dLayer, ConvGeometry, patches
from ffzero_lab.cli.app import app
from ffzero_lab.ffzero.goodness import TapGoodness, cosine_goodness, random_projection
from ffzero_lab.ffzero.perturbation import DirectionSampler, directional_gradient, perturbed_settings
from ffzero_lab.store.runstore import RunStore

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
CNN_DIGITS = [
    "--set", "data.set=digits", "--set", "train.epochs=4", "--set", "network.conv.channels=4",
    "--set", "network.conv.kernel=3", "--set", "network.conv.stride=1", "--set", "network.width=32",
    "--set", "goodness.projection=8", "--set", "train.lr=0.02", "--set", "train.batch_size=32",
]


def naive_conv(x: np.ndarray, kernels: np.ndarray, bias: np.ndarray, stride: int) -> np.ndarray:
    """Cross-correlation with zero padding k // 2, by loops: ``(C_in, H, W) -> (C_out, H', W')``."""
    c_out, c_in, k, _ = kernels.shape
    p = k // 2
    padded = np.pad(x, [(0, 0), (p, p), (p, p)])
    h_out = (x.shape[1] + 2 * p - k) // stride + 1
    w_out = (x.shape[2] + 2 * p - k) // stride + 1
    out = np.empty((c_out, h_out, w_out))
    for o in range(c_out):
        for i in range(h_out):
            for j in range(w_out):
                window = padded[:, i * stride : i * stride + k, j * stride : j * stride + k]
                out[o, i, j] = np.sum(window * kernels[o]) + bias[o]
    return out


@pytest.mark.parametrize(("c_in", "size", "kernel", "stride"), [(1, 8, 3, 1), (2, 9, 5, 2), (3, 7, 3, 2), (1, 6, 1, 1)])
def test_conv_layer_equals_a_loop_convolution(c_in: int, size: int, kernel: int, stride: int) -> None:
    geo = ConvGeometry(c_in, size, size, 4, kernel, stride)
    layer = Conv2dLayer(geo, 1.0, seed=1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, layer.in_features))
    settings = rng.standard_normal((3, layer.n_params))
    shared, _ = layer.propagate(x, settings)
    per_setting, _ = layer.propagate(np.broadcast_to(x, (3, *x.shape)), settings)
    assert shared.shape == (3, 5, layer.ports)
    for s in range(3):
        blocks = settings[s].reshape(4, geo.fan_in + 1)
        kernels = blocks[:, :-1].reshape(4, c_in, kernel, kernel)
        for b in range(5):
            want = naive_conv(x[b].reshape(c_in, size, size), kernels, blocks[:, -1], stride).ravel()
            np.testing.assert_allclose(shared[s, b], want, atol=1e-12)
            np.testing.assert_allclose(per_setting[s, b], want, atol=1e-12)


def test_patches_are_chunked_without_changing_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    import drivers.convolution as conv

    layer = Conv2dLayer(ConvGeometry(2, 10, 10, 3, 5, 2), 1.0, seed=2)
    x = np.random.default_rng(3).standard_normal((7, layer.in_features))
    whole, _ = layer.propagate(x, layer.get_parameters()[None])
    monkeypatch.setattr(conv, "PATCH_BUDGET", 1)  # one sample per chunk
    chunked, _ = layer.propagate(x, layer.get_parameters()[None])
    np.testing.assert_allclose(whole, chunked, rtol=1e-12, atol=1e-14)  # BLAS may sum in another order
    assert patches(x, layer.geo).shape == (7, 25, 50)


def test_a_channel_block_reaches_only_its_own_taps() -> None:
    """The contract's channel structure: block c of the parameters drives only ports of channel c."""
    layer = Conv2dLayer(ConvGeometry(2, 6, 6, 3, 3, 1), 1.0, seed=4)
    x = np.random.default_rng(5).standard_normal((4, layer.in_features))
    theta = layer.get_parameters()
    block, ports = layer.n_params // layer.channels, layer.ports // layer.channels
    base = layer.evaluate(x, theta[None])[0]
    for c in range(layer.channels):
        changed = theta.copy()
        changed[c * block : (c + 1) * block] += 0.5
        diff = np.abs(layer.evaluate(x, changed[None])[0] - base).reshape(4, layer.channels, ports).max(axis=(0, 2))
        assert diff[c] > 1e-3 and np.all(np.delete(diff, c) == 0)


def test_tensorflow_twin_equals_numpy() -> None:
    pytest.importorskip("tensorflow")
    import tensorflow as tf

    layer = Conv2dLayer(ConvGeometry(2, 9, 9, 3, 5, 2), 1.0, seed=6)
    x = np.random.default_rng(7).standard_normal((4, layer.in_features))
    theta = np.random.default_rng(8).standard_normal(layer.n_params)
    want = layer.evaluate(x, theta[None])[0]
    _, got = layer.differentiable()(tf.constant(x), tf.constant(theta))
    np.testing.assert_allclose(got.numpy(), want, atol=1e-10)


def test_grouped_directions_are_unit_per_channel_and_estimate_each_channels_gradient() -> None:
    groups, block, k = 3, 5, 4
    sampler = DirectionSampler(groups * block, k, seed=9, groups=groups)
    v = sampler.draw(0).copy()
    np.testing.assert_allclose(np.linalg.norm(v.reshape(k, groups, block), axis=2), 1.0, rtol=1e-6)
    # channel g's loss is a quadratic of its own block only: L_g = |A_g theta_g|^2 / 2
    a = np.random.default_rng(10).standard_normal((groups, block, block))
    theta = np.random.default_rng(11).standard_normal(groups * block)

    def losses(settings: np.ndarray) -> np.ndarray:
        t = settings.reshape(-1, groups, block)
        return 0.5 * np.sum(np.einsum("gij,sgj->sgi", a, t) ** 2, axis=2)  # (2K, G)

    true = np.einsum("gji,gjk,gk->gi", a, a, theta.reshape(groups, block)).ravel()
    draws = [directional_gradient(losses(perturbed_settings(theta, sampler.draw(c), 1e-4)), sampler.draw(c), 1e-4)
             for c in range(4000)]
    mean = np.mean(draws, axis=0)
    assert np.linalg.norm(mean - true) < 0.1 * np.linalg.norm(true)
    # one draw: block g equals the ungrouped estimate of channel g alone
    v = sampler.draw(5).copy()
    g = directional_gradient(losses(perturbed_settings(theta, v, 1e-4)), v, 1e-4)
    for c in range(groups):
        vc = v[:, c * block : (c + 1) * block]
        lc = losses(perturbed_settings(theta, v, 1e-4))[:, c]
        np.testing.assert_allclose(g[c * block : (c + 1) * block], directional_gradient(lc, vc, 1e-4), rtol=1e-9)


def test_channel_goodness_projects_each_channel_then_takes_the_mean() -> None:
    rng = np.random.default_rng(12)
    projection = random_projection(3, 10, 4, seed=13)
    prototypes = rng.standard_normal((5, 4))
    prototypes /= np.linalg.norm(prototypes, axis=1, keepdims=True)
    scored = TapGoodness(prototypes, centred=False, projection=projection)
    taps = rng.standard_normal((2, 6, 30))
    per_channel = scored.per_channel(taps)
    assert per_channel.shape == (2, 6, 3, 5)
    for c in range(3):
        want = cosine_goodness(taps[..., c * 10 : (c + 1) * 10] @ projection[c].T, prototypes)
        np.testing.assert_allclose(per_channel[..., c, :], want)
    np.testing.assert_allclose(scored(taps), per_channel.mean(axis=-2))


@pytest.mark.parametrize("method", ["ff-dd", "bp-dd"])
def test_cnn_trains_on_digits_and_stores_its_projections(tmp_path: Path, method: str) -> None:
    args = [str(ROOT / "protocols" / "mnist_cnn.yaml"), *CNN_DIGITS, "--set", f"method={method}",
            "--set", "record.measurements=true"]
    result = runner.invoke(app, ["dry-run", *args, "--json", "-q", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    import json

    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["test_accuracy"] > 0.4  # chance is 0.1 (measured: ff-dd 0.60, bp-dd 0.70)
    store = RunStore(tmp_path)
    names = store.array_names(1)
    if method == "ff-dd":
        assert store.array(1, "projections/0").shape == (4, 8, 64)  # 4 channels, d = 8, 8 x 8 maps
        assert store.array(1, "projections/1").shape == (4, 8, 64)
        assert "projections/2" not in names  # the dense layer is scored on its ports
        assert store.array(1, "prototypes/0").shape == (10, 8)
        # every layer learned: each beats chance on its own vote (measured 0.27, 0.47, 0.66)
        assert all(acc > 0.18 for acc in summary["layer_accuracy"])
    store.close()


def test_a_conv_steps_settings_rebuild_from_the_store(tmp_path: Path) -> None:
    """Replay knows a channel-wise layer drew one unit direction per channel."""
    from ffzero_lab.config.protocol import parse_protocol
    from ffzero_lab.ffzero.encoding import encode
    from ffzero_lab.run.prepare import prepare
    from ffzero_lab.store.replay import rebuild_settings

    args = [str(ROOT / "protocols" / "mnist_cnn.yaml"), *CNN_DIGITS, "--set", "train.epochs=1",
            "--set", "data.train_limit=128", "--set", "record.measurements=true"]
    assert runner.invoke(app, ["dry-run", *args, "-q", "--runs-dir", str(tmp_path)]).exit_code == 0
    store = RunStore(tmp_path)
    protocol = parse_protocol(store.protocol(1), "run 1")
    prepared = prepare(protocol, "run 1", None)
    x = encode(prepared.dataset.x_train[:128], protocol.data.encoding)
    layer = prepared.network.layers[0]
    settings = rebuild_settings(store, 1, 0, 1)
    m = store.measurement(1, 0, 1)
    np.testing.assert_allclose(layer.evaluate(x[m["samples"]], settings).astype(np.float32), m["readings"],
                               rtol=1e-5, atol=1e-6)
    store.close()


def test_conv_layers_on_a_chip_or_on_tabular_data_are_refused(tmp_path: Path) -> None:
    quick = str(ROOT / "protocols" / "quickstart.yaml")
    result = runner.invoke(app, ["dry-run", quick, "--set", "network.conv={channels: 2}", "-q",
                                 "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "network" in result.stderr and "conv" in result.stderr
    result = runner.invoke(app, ["dry-run", str(ROOT / "protocols" / "mnist_cnn.yaml"), "--set", "data.set=franke-2d",
                                 "-q", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "images" in result.stderr


def test_ff_ad_gradient_of_a_conv_layer_is_each_channels_own_loss_gradient() -> None:
    """FF+AD through the conv twin, projections and per-channel margin losses equals finite differences
    of the numpy channel losses (summed: channel g's kernel reaches only channel g's loss)."""
    pytest.importorskip("tensorflow")
    from ffzero_lab.config.protocol import load_protocol
    from ffzero_lab.ffzero.autodiff import LocalAD
    from ffzero_lab.ffzero.encoding import encode
    from ffzero_lab.ffzero.methods import Split
    from ffzero_lab.run.orchestrator import Orchestrator
    from ffzero_lab.run.prepare import prepare

    overrides = [a for a in CNN_DIGITS if a != "--set"]
    protocol, _ = load_protocol(ROOT / "protocols" / "mnist_cnn.yaml", [*overrides, "method=ff-ad"])
    prepared = prepare(protocol, "<test>", None)
    orch = Orchestrator(protocol, prepared.network, prepared.dataset, seeds=prepared.seeds)
    x = encode(prepared.dataset.x_train[:40], "raw")
    split = Split(x, prepared.dataset.y_train[:40])
    est = LocalAD(orch.network, 0, split, split, orch.goodness[0], orch.settings, orch.objective)
    theta = est.parameters()
    batch = np.arange(40)
    result = est.loss_and_gradient(theta, batch, 0)

    def total(t: np.ndarray) -> float:
        taps = est.layer.evaluate(x, t[None])[0]
        return float(est.channel_losses(taps, split.y)[0].sum())

    h = 1e-6
    numeric = np.array([(total(theta + h * e) - total(theta - h * e)) / (2 * h) for e in np.eye(theta.size)])
    np.testing.assert_allclose(result.grad, numeric, atol=1e-6)
    assert result.loss == pytest.approx(total(theta) / orch.goodness[0].channels)


def test_plot_of_a_cnn_run_summarises_projected_channel_readings(tmp_path: Path) -> None:
    args = [str(ROOT / "protocols" / "mnist_cnn.yaml"), *CNN_DIGITS, "--set", "train.epochs=1",
            "--set", "data.train_limit=128", "--set", "record.measurements=true"]
    assert runner.invoke(app, ["dry-run", *args, "-q", "--runs-dir", str(tmp_path)]).exit_code == 0
    from ffzero_lab.store.plots import tap_summaries

    store = RunStore(tmp_path)
    summaries = tap_summaries(store, 1)
    store.close()
    assert [s.layer for s in summaries] == [0, 1, 2]
    assert summaries[0].means.shape == (10, 8)  # classes x projected dimension
    assert summaries[2].means.shape == (10, 32)  # the dense layer: classes x ports
    result = runner.invoke(app, ["plot", "1", "--output", str(tmp_path / "plots"), "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "plots" / "run-1-taps.png").stat().st_size > 0


def test_fig5_sweep_is_accuracy_against_channels_for_ff_dd_and_bp_dd() -> None:
    from ffzero_lab.sweep.grid import expand, load_sweep
    from ffzero_lab.sweep.plots import x_axes

    sweep = load_sweep(ROOT / "benchmarks" / "sweeps" / "fig5_cnn.yaml")
    cells = expand(sweep)
    assert len(cells) == 16  # as its header says
    assert sweep.grid["method"] == ["ff-dd", "bp-dd"]
    assert x_axes(sweep.grid) == ["network.conv.channels"]
    protocol = cells[0].protocol
    assert protocol.network.conv is not None and protocol.data.set == "mnist" and protocol.device.driver == "digital"


def test_a_network_refuses_a_layer_whose_channels_do_not_split_it() -> None:
    from ffzero_lab.core.network import Network

    layer = Conv2dLayer(ConvGeometry(1, 6, 6, 3, 3, 1), 1.0, seed=0)
    layer.channels = 4  # 3 kernels' parameters cannot split into 4 blocks
    with pytest.raises(ValueError, match="4 channels"):
        Network([layer], [])
