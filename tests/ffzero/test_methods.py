"""The four methods: each trains through its own code path; the AD twins equal the devices."""

from __future__ import annotations

import numpy as np
import pytest

from ffzero_lab.config.protocol import parse_protocol
from ffzero_lab.data.datasets import block_average
from ffzero_lab.ffzero.goodness import cosine_goodness
from ffzero_lab.ffzero.losses import margin_loss
from ffzero_lab.ffzero.methods import GlobalDD, Split
from ffzero_lab.run.orchestrator import Orchestrator
from ffzero_lab.run.prepare import prepare

tf = pytest.importorskip("tensorflow")


def protocol(method: str, device: str = "digital", **train: object):
    if device == "digital":
        doc = {"data": {"encoding": "raw", "train_limit": 400, "test_limit": 200},
               "network": {"layers": 2, "width": 16, "activation": {"kind": "tanh"}},
               "device": {"driver": "digital"}}
        train = {"readout": "raw", "logit_scale": 1.0, **train}
    else:
        doc = {"data": {"train_limit": 128, "test_limit": 64, "resize": [4, 4]},
               "network": {"layers": 2, "width": 16, "activation": {"kind": "electro-optic", "gain": 20.0}},
               "device": {"driver": "neurophox-mesh", "settings": {"init": "random"}}}
    doc.update({"seed": 5, "method": method,
                "train": {"epochs": 2, "batch_size": 50, "lr": 0.02, "directions": 8, **train}})
    return parse_protocol(doc, "<test>")


def built(p):
    prepared = prepare(p, "<test>", None)
    return Orchestrator(p, prepared.network, prepared.dataset, [], prepared.seeds)


@pytest.mark.parametrize("method", ["ff-dd", "ff-ad", "bp-dd", "bp-ad"])
def test_every_method_learns_on_the_digital_device(method: str) -> None:
    result = built(protocol(method, epochs=15)).run()
    assert result.test_accuracy > 0.4, result  # chance is 0.1
    if method.startswith("bp"):
        assert result.layer_accuracy[0] is None and result.layer_accuracy[-1] == result.test_accuracy


def test_bp_methods_move_every_layer_ff_moves_one_at_a_time() -> None:
    for method in ("bp-dd", "bp-ad"):
        orch = built(protocol(method, epochs=1))
        before = [layer.get_parameters() for layer in orch.network.layers]
        orch.run()
        assert all(not np.array_equal(b, layer.get_parameters()) for b, layer in zip(before, orch.network.layers))


def test_local_ad_loss_and_gradient_match_the_device() -> None:
    """FF+AD's TensorFlow loss equals the numpy loss on the device; its gradient equals a
    central finite difference of that loss."""
    from ffzero_lab.ffzero.autodiff import LocalAD

    p = protocol("ff-ad", device="mesh")
    orch = built(p)
    layer = orch.network.layers[0]
    split = Split(orch.x_train, orch.y_train)
    est = LocalAD(orch.network, 0, split, split, orch.goodness[0], orch.settings, orch.objective)
    batch = np.arange(20)
    theta = layer.get_parameters()
    result = est.loss_and_gradient(theta, batch, 0)
    loss, grad = result.loss, result.grad

    def numpy_loss(t: np.ndarray) -> float:
        taps = layer.evaluate(split.x[batch], t[None])
        g = cosine_goodness(taps, orch.prototypes[0], True)
        return float(margin_loss(g, split.y[batch], p.train.margin)[0])

    assert loss == pytest.approx(numpy_loss(theta), rel=1e-10)
    for i in (0, 100, layer.n_params - 1):
        e = np.zeros_like(theta)
        e[i] = 1e-6
        fd = (numpy_loss(theta + e) - numpy_loss(theta - e)) / 2e-6
        assert grad[i] == pytest.approx(fd, rel=1e-4, abs=1e-8)


def test_global_ad_twin_equals_the_device_network() -> None:
    """The TensorFlow network (meshes + electro-optic stage) gives the device's readout loss."""
    from ffzero_lab.ffzero.autodiff import GlobalAD

    p = protocol("bp-ad", device="mesh")
    orch = built(p)
    split = Split(orch.x_train, orch.y_train)
    est = GlobalAD(orch.network, split, split, orch.objective, orch.settings)
    batch = np.arange(30)
    result = est.loss_and_gradient(est.parameters(), batch, 0)
    loss, grad = result.loss, result.grad
    taps = orch.network.all_taps(split.x[batch])[-1]
    expected = orch.objective.readout_loss(taps, split.y[batch], orch.settings)
    assert loss == pytest.approx(float(expected), rel=1e-10)
    assert grad.shape == (est.n,) and np.abs(grad).max() > 0


def test_global_dd_settings_reach_every_layer() -> None:
    p = protocol("bp-dd", device="mesh")
    orch = built(p)
    split = Split(orch.x_train, orch.y_train)
    est = GlobalDD(orch.network, split, split, orch.objective, orch.settings, 0)
    theta = est.parameters()
    taps = orch.network.propagate_settings(split.x[:8], est.split(theta[None]))
    np.testing.assert_allclose(taps[0], orch.network.all_taps(split.x[:8])[-1], atol=1e-12)
    moved = theta.copy()
    moved[: est.sizes[0]] += 0.3  # only the first mesh changes: the last taps still change
    assert not np.allclose(orch.network.propagate_settings(split.x[:8], est.split(moved[None]))[0], taps[0])


def test_tensorflow_mesh_matrix_equals_neurophox() -> None:
    from drivers.simulated.mesh import MeshSettings, SimulatedMesh

    for n, basis, err in ((8, "sm", 0.05), (7, "bloch", 0.03), (16, "sm", 0.0)):
        mesh = SimulatedMesh(n, MeshSettings(basis=basis, bs_error=err), seed=2)
        fields, _ = mesh.differentiable()(tf.eye(n, dtype=tf.complex128), tf.constant(mesh.get_parameters()))
        np.testing.assert_allclose(fields.numpy(), mesh.reference_matrix(), atol=1e-10)


def test_block_average() -> None:
    images = np.arange(2 * 28 * 28, dtype=float).reshape(2, 28, 28)
    small = block_average(images, (8, 8))
    assert small.shape == (2, 8, 8)
    padded = np.zeros((2, 32, 32))
    padded[:, 2:30, 2:30] = images
    assert small[1, 3, 5] == pytest.approx(padded[1, 12:16, 20:24].mean())


def test_unknown_method_rejected() -> None:
    from ffzero_lab.core.errors import ConfigError

    with pytest.raises(ConfigError, match="method"):
        parse_protocol({"method": "ff-zz"}, "<test>")
