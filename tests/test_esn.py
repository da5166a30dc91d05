"""Echo-state networks (networks/esn/), the series (evo/tasks/series.py) and the time-series task (evo/tasks/timeseries.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evo.tasks.series import (
    load_series,
    mackey_glass,
    make_series_split,
    narma10,
    split_series,
)
from evo.tasks.timeseries import TimeSeriesTask
from networks.esn import (
    DEFAULT_RIDGE,
    ESN,
    ESNSpec,
    HyperparameterEncoding,
    HyperparameterSpace,
    Reservoir,
    ReservoirStack,
    WeightsEncoding,
    csr_kernel,
    fit_readout,
    nrmse,
    predict_readout,
    spectral_radius,
)
from networks.esn import spec as esn_spec


@pytest.fixture(scope="module")
def small_split():
    """A short Mackey-Glass split so task tests stay fast."""
    return make_series_split(washout=50, n_train=400, n_val=150, n_test=200)


# --------------------------------------------------------------------------- #
# Reservoir construction
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("units, target", [(60, 0.9), (200, 1.25)])  # dense path, ARPACK path
def test_spectral_radius_matches_target(units, target):
    W = Reservoir(units=units, connectivity=0.1, spectral_radius=target, seed=3).build().W
    dense = np.max(np.abs(np.linalg.eigvals(W.toarray())))
    assert dense == pytest.approx(target, rel=1e-8)
    assert spectral_radius(W, seed=1) == pytest.approx(target, rel=1e-8)


def test_weights_are_a_function_of_the_seed():
    a, b = Reservoir(units=150, seed=7).build(), Reservoir(units=150, seed=7).build()
    for x, y in [(a.W.data, b.W.data), (a.W.indices, b.W.indices), (a.W.indptr, b.W.indptr), (a.W_in, b.W_in), (a.bias, b.bias)]:
        np.testing.assert_array_equal(x, y)
    c = Reservoir(units=150, seed=8).build()
    assert not np.array_equal(a.W_in, c.W_in)
    assert a.W.shape == (150, 150) and a.W_in.shape == (150, 1)
    # Expected fraction of nonzeros.
    assert a.W.nnz == pytest.approx(0.02 * 150 * 150, rel=0.2)


def test_patterns_are_nested_in_the_connectivity():
    sparse = Reservoir(units=100, connectivity=0.05, seed=2)
    dense = sparse.replace(connectivity=0.15)
    rs, cs = sparse.pattern()
    rd, cd = dense.pattern()
    assert set(zip(rs.tolist(), cs.tolist())) <= set(zip(rd.tolist(), cd.tolist()))
    assert len(rd) > len(rs)


def test_weight_vector_round_trip():
    res = Reservoir(units=50, connectivity=0.1, seed=4)
    built = res.build()
    vec = res.weight_vector()
    assert vec.shape == (res.n_weights,) == (res.n_recurrent + 50,)
    again = res.weights_from_vector(vec)
    np.testing.assert_array_equal(again.W.toarray(), built.W.toarray())
    np.testing.assert_array_equal(again.W_in, built.W_in)
    np.testing.assert_array_equal(again.bias, built.bias)
    rescaled = res.weights_from_vector(3.0 * vec, rescale=True)
    assert spectral_radius(rescaled.W) == pytest.approx(res.spectral_radius, rel=1e-8)
    with pytest.raises(ValueError, match="weight vector"):
        res.weights_from_vector(vec[:-1])


def test_bad_hyperparameters_are_named():
    with pytest.raises(ValueError, match="leak_rate"):
        Reservoir(leak_rate=0.0)
    with pytest.raises(ValueError, match="connectivity"):
        Reservoir(connectivity=1.5)


# --------------------------------------------------------------------------- #
# Running
# --------------------------------------------------------------------------- #
def test_batched_run_equals_each_sequence_alone():
    esn = ESN(Reservoir(units=80, connectivity=0.1, n_inputs=2, seed=1))
    u = np.random.default_rng(0).uniform(-1, 1, size=(4, 300, 2))  # 300 > one state block
    batched = esn.run(u)
    assert batched.shape == (4, 300, 80)
    for s in range(4):
        np.testing.assert_array_equal(batched[s], esn.run(u[s]))


def test_stacked_reservoirs_equal_each_alone():
    weights = [Reservoir(units=40, connectivity=0.1, leak_rate=a, seed=i).build() for i, a in enumerate([0.2, 0.5, 1.0])]
    u = np.random.default_rng(1).normal(size=(2, 50, 1))
    together = ReservoirStack(weights).run(u)
    for p, w in enumerate(weights):
        np.testing.assert_array_equal(together[p], ReservoirStack([w]).run(u)[0])


def test_direct_kernel_matches_plain_scipy(monkeypatch):
    esn = ESN(Reservoir(units=70, connectivity=0.1, seed=3))
    for u in (np.random.default_rng(7).normal(size=(3, 40, 1)), np.random.default_rng(8).normal(size=(1, 40, 1))):
        fast = esn.run(u)
        monkeypatch.setattr(csr_kernel, "PRIVATE_KERNEL", False)
        np.testing.assert_array_equal(esn.run(u), fast)  # the public fallback: slower, the same numbers bit for bit
        monkeypatch.undo()


def test_private_scipy_kernel_is_in_use():
    """Fails loudly when a SciPy upgrade moves or changes ``scipy.sparse._sparsetools.csr_matvec(s)``.

    Results would stay the same (the public fallback is bit-identical) but every reservoir step gets slower:
    check networks/esn/csr_kernel.py against the new SciPy (signature, in-place accumulation, row order).
    """
    import scipy

    assert csr_kernel.PRIVATE_KERNEL, (
        f"SciPy {scipy.__version__}: the private CSR kernel is missing or disagrees; see networks/esn/csr_kernel.py"
    )
    W = Reservoir(units=40, connectivity=0.2, seed=1).build().W
    for S in (1, 4):
        x = np.random.default_rng(S).normal(size=(40, S))
        y = np.random.default_rng(S + 10).normal(size=(40, S))
        expected = y.copy()
        for i in range(40):  # y_i, then the row's nonzeros in stored order: the documented accumulation
            for jj in range(W.indptr[i], W.indptr[i + 1]):
                expected[i] += W.data[jj] * x[W.indices[jj]]
        got = y.copy()
        csr_kernel.bound_accumulate(W, S, private=True)(x, got)
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
        public = y.copy()
        csr_kernel.bound_accumulate(W, S, private=False)(x, public)
        np.testing.assert_array_equal(public, got)


def test_leaky_update_matches_the_formula():
    res = Reservoir(units=30, connectivity=0.2, leak_rate=0.4, bias_scaling=0.5, seed=5)
    w = res.build()
    u = np.random.default_rng(2).normal(size=(20, 1))
    states = ESN(res).run(u)
    x = np.zeros(30)
    W = w.W.toarray()
    for t in range(20):
        x = 0.6 * x + 0.4 * np.tanh(W @ x + w.W_in @ u[t] + w.bias)
        np.testing.assert_allclose(states[t], x, rtol=1e-12, atol=1e-14)


def test_readout_fits_a_linear_target():
    esn = ESN(Reservoir(units=40, connectivity=0.2, seed=6))
    u = np.random.default_rng(3).uniform(-1, 1, size=(2, 200, 1))
    states = esn.run(u)
    coef = np.random.default_rng(4).normal(size=41)
    target = 0.7 + u[..., 0] * coef[0] + states @ coef[1:]
    W_out = fit_readout(states, target[..., None], ridge=1e-12, washout=10, inputs=u)
    pred = predict_readout(W_out, states, u)[..., 0]
    assert nrmse(pred[:, 10:], target[:, 10:]) < 1e-6


# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #
def _mackey_glass_reference(n, tau=17.0, beta=0.2, gamma=0.1, n_exp=10.0, x0=1.2, h=0.1, substeps=10):
    """Plain per-step RK4 loop (delayed value linearly interpolated at the half step)."""
    d = int(round(tau / h))
    x = [x0] * (d + 1)
    f = lambda z: beta * z / (1 + z**n_exp)  # noqa: E731
    for k in range((n - 1) * substeps):
        z0, z1 = x[k], x[k + 1]
        zm = 0.5 * (z0 + z1)
        xc = x[-1]
        k1 = f(z0) - gamma * xc
        k2 = f(zm) - gamma * (xc + 0.5 * h * k1)
        k3 = f(zm) - gamma * (xc + 0.5 * h * k2)
        k4 = f(z1) - gamma * (xc + h * k3)
        x.append(xc + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4))
    return np.array(x[d::substeps])


def test_mackey_glass_properties():
    s = mackey_glass(3000, discard=500)
    assert s.shape == (3000,)
    assert 0.2 < s.min() < 0.6 and 1.1 < s.max() < 1.4
    np.testing.assert_array_equal(s, mackey_glass(3000, discard=500))
    assert not np.allclose(mackey_glass(500, seed=1), mackey_glass(500, seed=2))
    np.testing.assert_allclose(mackey_glass(400), _mackey_glass_reference(400), rtol=1e-10)
    # tau = 17 is chaotic (no period), tau = 10 is not.
    split = make_series_split(tau=17.0, washout=10, n_train=100, n_val=20, n_test=100)
    assert split.source["tau"] == 17.0 and split.source["series"] == "mackey_glass"
    with pytest.raises(ValueError, match="whole number"):
        mackey_glass(10, tau=17.05)


def test_narma10_formula():
    u, y = narma10(60, seed=3)
    assert u.shape == y.shape == (60,) and u.min() >= 0 and u.max() <= 0.5
    assert np.all(y[:10] == 0)
    for t in range(9, 59):
        expected = 0.3 * y[t] + 0.05 * y[t] * np.sum(y[t - 9 : t + 1]) + 1.5 * u[t - 9] * u[t] + 0.1
        assert y[t + 1] == pytest.approx(expected, rel=1e-12)
    assert y[10] == pytest.approx(1.5 * u[0] * u[9] + 0.1)


def test_load_series(tmp_path):
    values = np.sin(np.arange(50) / 3.0)
    np.savez(tmp_path / "a.npz", series=values)
    np.testing.assert_array_equal(load_series(tmp_path / "a.npz"), values)
    (tmp_path / "b.csv").write_text("t,value\n" + "".join(f"{i},{float(v)!r}\n" for i, v in enumerate(values)))
    np.testing.assert_array_equal(load_series(tmp_path / "b.csv", column="value"), values)
    with pytest.raises(ValueError, match="name the one"):
        load_series(tmp_path / "b.csv")
    with pytest.raises(ValueError, match="does not exist"):
        load_series(tmp_path / "missing.npz")


def test_load_series_other_layouts(tmp_path):
    values = np.cos(np.arange(20) / 2.0)
    np.savez(tmp_path / "y.npz", y=values[:, None], other=np.zeros(3))
    np.testing.assert_array_equal(load_series(tmp_path / "y.npz"), values)  # "y" when there is no "series"; (N, 1) flattened
    np.testing.assert_array_equal(load_series(tmp_path / "y.npz", key="other"), np.zeros(3))
    with pytest.raises(ValueError, match="no array named 'series' or 'y'"):
        np.savez(tmp_path / "z.npz", z=values)
        load_series(tmp_path / "z.npz")
    (tmp_path / "one.csv").write_text("".join(f"{float(v)!r}\n" for v in values))  # one column, no header
    np.testing.assert_array_equal(load_series(tmp_path / "one.csv"), values)
    (tmp_path / "two.csv").write_text("".join(f"{i},{float(v)!r}\n" for i, v in enumerate(values)))
    np.testing.assert_array_equal(load_series(tmp_path / "two.csv", column=-1), values)
    with pytest.raises(ValueError, match="unsupported format"):
        (tmp_path / "s.txt").write_text("1\n2\n")
        load_series(tmp_path / "s.txt")


# --------------------------------------------------------------------------- #
# Closed loop, persistence
# --------------------------------------------------------------------------- #
def test_closed_loop_equals_teacher_forcing_on_its_own_output():
    series = mackey_glass(900, discard=300)
    u = (series - series.mean()) / series.std()
    esn = ESN(Reservoir(units=100, connectivity=0.1, seed=2), ridge=1e-8, washout=50).fit(u[:600, None], u[1:601, None])
    free = esn.generate(40)[0, :, 0]  # continues after the training sequence (after reading u[599])
    # Teacher forcing on the free run's own values, from the same state, gives back the same outputs.
    forced = esn.predict(free[:-1, None], initial_state=esn.last_state_)
    np.testing.assert_allclose(forced[:, 0], free[1:], rtol=1e-9, atol=1e-12)
    # The first closed-loop output is the teacher-forced one-step prediction of u[600].
    one = esn.predict(u[:600, None])[-1, 0]
    assert free[0] == pytest.approx(one, rel=1e-10)
    assert abs(free[0] - u[600]) < 0.01
    # Batched start points equal each alone.
    starts = esn.run(u[:700, None])[[599, 650, 699]]
    inputs = u[[599, 650, 699], None]
    batched = esn.generate(10, starts, inputs)
    for i in range(3):
        np.testing.assert_allclose(batched[i], esn.generate(10, starts[i : i + 1], inputs[i : i + 1])[0], rtol=1e-12)


def test_describe_save_load_round_trip(tmp_path):
    u = np.random.default_rng(5).normal(size=(300, 1))
    esn = ESN(Reservoir(units=60, connectivity=0.1, seed=9), ridge=1e-6, washout=20).fit(u[:-1], u[1:])
    description = json.loads(json.dumps(esn.describe()))
    rebuilt = ESN.from_description(description)
    np.testing.assert_array_equal(rebuilt.weights.W.toarray(), esn.weights.W.toarray())
    esn.save(tmp_path / "esn.npz")
    loaded = ESN.load(tmp_path / "esn.npz")
    np.testing.assert_array_equal(loaded.predict(u), esn.predict(u))
    # Explicit (e.g. evolved) weights travel in the file.
    res = Reservoir(units=30, connectivity=0.2, seed=1)
    custom = res.weights_from_vector(res.weight_vector() * 0.5)
    esn2 = ESN(res, washout=10, weights=custom).fit(u[:-1], u[1:])
    esn2.save(tmp_path / "esn2.npz")
    np.testing.assert_array_equal(ESN.load(tmp_path / "esn2.npz").predict(u), esn2.predict(u))


def test_default_recipe_predicts_mackey_glass():
    """500 units, the default recipe: one-step test NRMSE well below 1e-3 (measured ~2e-4)."""
    data = make_series_split()  # washout 200, train 3000, val 1000, test 2000
    esn = ESN(Reservoir(), ridge=DEFAULT_RIDGE, washout=data.washout)
    esn.fit(data.inputs[: data.train_end], data.targets[: data.train_end])
    rest = esn.predict(data.inputs[data.train_end : data.test_end], initial_state=esn.last_state_)
    error = nrmse(rest[data.n_val :], data.targets[data.val_end : data.test_end])
    assert error < 1e-3


# --------------------------------------------------------------------------- #
# Tasks
# --------------------------------------------------------------------------- #
def test_hyperparameter_space_round_trip():
    space = HyperparameterSpace(units=500)
    z = space.encode(1.1, 0.3, 0.5, 0.02, 1e-8)
    hp = space.decode(z)
    assert hp == pytest.approx({"spectral_radius": 1.1, "leak_rate": 0.3, "input_scaling": 0.5, "connectivity": 0.02, "ridge": 1e-8})
    extreme = space.decode(np.array([50.0, -50.0, 9.0, 50.0, 99.0]))
    assert extreme["spectral_radius"] <= 3.0 and extreme["leak_rate"] >= 1e-3 and extreme["ridge"] <= 1e4
    assert extreme["connectivity"] <= 50 / 500


def _genomes(spec, n):
    rng = np.random.default_rng(0)
    return spec.initial_genome()[None] + 0.3 * rng.normal(size=(n, spec.n_params))


@pytest.mark.parametrize("mode", ["hyperparameters", "weights"])
def test_task_fitness_shape_chunks_and_figures(mode, small_split, monkeypatch):
    task = TimeSeriesTask(small_split)
    if mode == "hyperparameters":
        spec = ESNSpec(HyperparameterEncoding(units=80))
        assert spec.n_params == 5
    else:
        spec = ESNSpec(WeightsEncoding(Reservoir(units=50, connectivity=0.1, seed=1)))
        assert 200 < spec.n_params < 400
    assert task.kind == "timeseries"
    genomes = _genomes(spec, 6)
    seeds = np.arange(6, dtype=np.uint64)
    fitness = task.evaluate(spec, genomes, seeds, 0)
    assert fitness.shape == (6,) and np.all(np.isfinite(fitness))
    parts = np.concatenate([task.evaluate(spec, genomes[:2], seeds[:2], 0), task.evaluate(spec, genomes[2:], seeds[2:], 0)])
    np.testing.assert_array_equal(fitness, parts)
    # Smaller block-diagonal stacks (one reservoir each) give the same numbers.
    monkeypatch.setattr(esn_spec, "STACK_ROWS", 1)
    np.testing.assert_array_equal(task.evaluate(spec, genomes, seeds, 0), fitness)
    monkeypatch.undo()
    # The unperturbed centre is a decent model.
    centre = spec.init_params(np.random.default_rng(1), 1)[0]
    assert task.evaluate(spec, centre[None], seeds[:1], 0)[0] > 1.5  # val NRMSE < 0.03 (small data and reservoir)
    figures = task.test(spec, genomes[0], 0)
    assert {"test_nrmse", "test_nrmse_free_run", "free_run_horizon", "free_run_starts", "val_nrmse"} <= set(figures)
    val = task.validate(spec, genomes[0], 0)
    assert val["val_score"] == pytest.approx(fitness[0], rel=1e-9)
    assert figures["val_nrmse"] == pytest.approx(val["val_nrmse"], rel=1e-6)
    json.dumps(task.describe())
    json.dumps(spec.describe())


def test_hyperparameter_task_records_the_series(small_split):
    task = TimeSeriesTask(small_split)
    spec = ESNSpec(HyperparameterEncoding(units=60, n_reservoirs=2))
    d, network = task.describe(), spec.describe()
    assert d["data"]["source"]["tau"] == 17.0 and network["n_reservoirs"] == 2
    assert "spectral_radius = max_spectral_radius * sigmoid(z0)" in network["transforms"]
    assert task.evaluate(spec, _genomes(spec, 3), np.zeros(3, dtype=np.uint64), 0).shape == (3,)
    with pytest.raises(ValueError, match="genomes of shape"):
        task.evaluate(spec, np.zeros((2, 4)), np.zeros(2), 0)


def test_narma_task_has_no_free_run():
    data = make_series_split("narma10", washout=50, n_train=400, n_val=100, n_test=100, seed=1)
    assert not data.autonomous
    task = TimeSeriesTask(data)
    spec = ESNSpec(HyperparameterEncoding(units=60))
    figures = task.test(spec, spec.initial_genome(), 0)
    assert "test_nrmse_free_run" not in figures and figures["test_nrmse"] < 1.0


def test_split_series_checks_length():
    with pytest.raises(ValueError, match="needed"):
        split_series(np.arange(10.0), 2, 5, 2, 2)
