"""The training loop (ldct_nb.train): ASCON's alternating iteration touches what it should,
exact resume after a kill, data parallelism equal to one process, bad configs refused,
atomic checkpoints, schedules, and every method learning on a tiny data set."""
from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ldct_nb.data.manifest import load_manifest
from ldct_nb.data.stage import prepare_data
from ldct_nb.errors import ParameterError
from ldct_nb.train import load_config, load_denoiser, make_step, train
from ldct_nb.train.ascon import build_ascon
from ldct_nb.train.batches import BatchStream
from ldct_nb.train.checkpoint import load_checkpoint, save_checkpoint
from ldct_nb.train.steps import cosine_factor, set_learning_rates

torch.set_num_threads(1)
TINY_ESAU = dict(stem=4, widths=[8, 8, 16], heads=[1, 2, 2], bottleneck_heads=2, bottleneck_hidden=16)
TINY_ASCON = {"mac_width": 0.125, "sampling": "mayo2020"}
TINY_LOSS = {"n_anchors": 4, "n_queries": 32}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A run folder with a tiny synthetic cache: 32 x 32 slices, 8 train / 2 val / 2 test,
    at a low dose (the LDCT is noisy, so a denoiser can beat it within a few hundred steps)."""
    root = tmp_path_factory.mktemp("train_data")
    prepare_data(load_manifest("synthetic"), root, image_size=32, counts={"train": 8, "val": 2, "test": 2},
                 dose_fraction=0.01, progress=False)
    return root


def fresh_run_dir(data_dir: Path, tmp_path: Path, name: str = "run") -> Path:
    run = tmp_path / name
    run.mkdir()
    shutil.copytree(data_dir / "data", run / "data")
    return run


def esau_config(**over) -> dict:
    cfg = dict(method="esau_net", steps=12, batch_size=2, patch_size=16, model=TINY_ESAU, val_every=4,
               checkpoint_every=3, log_every=2, val_slices=2)
    return {**cfg, **over}


def ascon_config(**over) -> dict:
    cfg = dict(method="ascon", steps=8, batch_size=2, patch_size=32, model=TINY_ESAU,
               ascon={**TINY_ASCON, "loss": TINY_LOSS}, val_every=4, checkpoint_every=2, log_every=2, val_slices=2)
    return {**cfg, **over}


def weights(path: Path) -> dict[str, torch.Tensor]:
    blob = load_checkpoint(path)
    return {f"{net}.{k}": v for net, sd in blob["networks"].items() for k, v in sd.items()}


# ----------------------------------------------------------------------------- ASCON's iteration


def test_mac_step_changes_only_mac_net_online_and_the_ema_follows_its_formula():
    torch.manual_seed(0)
    step = build_ascon("official", model=TINY_ESAU, mac_width=0.125, sampling="mayo2020", loss=TINY_LOSS)
    mac = step.mac_net
    ldct = torch.rand(2, 1, 32, 32) * 0.3 + 0.3
    ndct = ldct + 0.02 * torch.randn_like(ldct)
    snap = lambda m: [p.detach().clone() for p in m.parameters()]  # noqa: E731
    g0, on0, tg0 = snap(step.denoiser), snap(mac.online), snap(mac.target)
    loc0, tloc0 = snap(mac.local_mlp), snap(mac.target_local_mlp)
    denoised = step.denoiser(ldct)
    # the MAC-Net update alone (before the EMA): only online parameters move
    out = step.loss.mac_loss(denoised, ndct, generator=torch.Generator().manual_seed(1))
    from ldct_nb.train.steps import update

    update(step.optimizers["mac_net"], out.total, list(mac.online_parameters()), step.opts)
    assert all(torch.equal(a, b) for a, b in zip(snap(step.denoiser), g0))
    assert all(torch.equal(a, b) for a, b in zip(snap(mac.target), tg0))
    assert any(not torch.equal(a, b) for a, b in zip(snap(mac.online), on0))
    assert any(not torch.equal(a, b) for a, b in zip(snap(mac.local_mlp), loc0))
    # official MAC-Net optimiser: plain SGD, so the change is -lr * grad (hand arithmetic)
    p = next(mac.online.parameters())
    torch.testing.assert_close(p.detach(), on0[0] - 2e-4 * p.grad)
    # EMA: target <- 0.99 target + 0.01 online (target branch and target local MLP)
    on1, loc1 = snap(mac.online), snap(mac.local_mlp)
    step.loss.update_target()
    for t, t0, o in zip(snap(mac.target), tg0, on1):
        torch.testing.assert_close(t, 0.99 * t0 + 0.01 * o)
    for t, t0, o in zip(snap(mac.target_local_mlp), tloc0, loc1):
        torch.testing.assert_close(t, 0.99 * t0 + 0.01 * o)


def test_denoiser_step_changes_only_the_denoiser():
    torch.manual_seed(0)
    step = build_ascon("paper", model=TINY_ESAU, mac_width=0.125, sampling="mayo2020", loss=TINY_LOSS)
    ldct = torch.rand(2, 1, 32, 32) * 0.3 + 0.3
    ndct = ldct + 0.02 * torch.randn_like(ldct)
    mac0 = {k: v.clone() for k, v in step.mac_net.state_dict().items()}
    g0 = [p.detach().clone() for p in step.denoiser.parameters()]
    parts = step.denoiser_step(step.denoiser(ldct), ndct, torch.Generator().manual_seed(2))
    assert {"total", "mse", "ssim", "global", "local"} <= set(parts)
    mac1 = step.mac_net.state_dict()
    assert all(torch.equal(mac0[k], mac1[k]) for k in mac0 if "running" not in k and "num_batches" not in k)
    assert all(p.grad is None for p in step.mac_net.parameters())
    assert any(not torch.equal(a, b.detach()) for a, b in zip(g0, step.denoiser.parameters()))


def test_joint_optimisation_trains_mac_net_through_the_denoiser_loss():
    torch.manual_seed(0)
    step = build_ascon("paper", model=TINY_ESAU, mac_width=0.125, sampling="mayo2020", loss=TINY_LOSS,
                       optimisation="joint")
    ldct = torch.rand(2, 1, 32, 32)
    on0 = [p.detach().clone() for p in step.mac_net.online.parameters()]
    parts = step(ldct, ldct.clone(), torch.Generator().manual_seed(0))
    assert "mac_total" not in parts  # one loss, not two
    assert any(not torch.equal(a, b.detach()) for a, b in zip(on0, step.mac_net.online.parameters()))


# ----------------------------------------------------------------------------- resume


def test_stopped_and_resumed_equals_uninterrupted_for_every_kind_of_step(data_dir, tmp_path):
    for cfg in (esau_config(), ascon_config(),
                dict(method="du_gan", steps=6, batch_size=2, patch_size=32, model={"channels": 4},
                     method_options={"critic_width": 4, "critic_depth": 2}, val_every=3, checkpoint_every=2,
                     val_slices=2)):
        a = fresh_run_dir(data_dir, tmp_path, f"a_{cfg['method']}")
        b = fresh_run_dir(data_dir, tmp_path, f"b_{cfg['method']}")
        full = train(cfg, a, progress=False)
        part = train(cfg, b, progress=False, stop_after=cfg["steps"] // 2 + 1)
        assert part.steps_done == cfg["steps"] // 2 + 1
        resumed = train(cfg, b, progress=False)
        assert resumed.resumed_from == cfg["steps"] // 2 + 1 and resumed.steps_done == cfg["steps"]
        wa, wb = weights(full.last), weights(resumed.last)
        assert wa.keys() == wb.keys()
        assert all(torch.equal(wa[k], wb[k]) for k in wa), cfg["method"]
        untimed = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
        assert untimed(full.history) == untimed(resumed.history) and full.validation == resumed.validation


def test_killed_with_sigkill_and_restarted_equals_uninterrupted(data_dir, tmp_path):
    """A real kill: the CLI in a subprocess, SIGKILL once a checkpoint exists, the same command again."""
    cfg = ascon_config(steps=16, checkpoint_every=2, val_every=8)
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    a, b = fresh_run_dir(data_dir, tmp_path, "a"), fresh_run_dir(data_dir, tmp_path, "b")
    cmd = [sys.executable, "-m", "ldct_nb.train", str(cfg_path), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(cmd + ["--run-dir", str(a)], check=True, capture_output=True, env=env, timeout=600)
    proc = subprocess.Popen(cmd + ["--run-dir", str(b)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = b / "ckpt" / "table1" / "ascon" / "seed0" / "last.pt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if last.is_file() and load_checkpoint(last)["step"] >= 4:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(last)["step"]
    assert 4 <= killed_at < 16, "the run ended before it could be killed mid-way"
    done = subprocess.run(cmd + ["--run-dir", str(b)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    wa, wb = weights(a / "ckpt/table1/ascon/seed0/last.pt"), weights(last)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_from_another_config_is_refused(data_dir, tmp_path):
    run = fresh_run_dir(data_dir, tmp_path)
    train(esau_config(steps=2), run, progress=False)
    with pytest.raises(ParameterError, match=r"another training config.*keys that differ: \['batch_size'\]"):
        train(esau_config(steps=2, batch_size=4), run, progress=False)
    # a finished run with the same config is not trained again
    again = train(esau_config(steps=2), run, progress=False)
    assert again.resumed_from == 2 and again.steps_done == 2
    # retrain starts over
    assert train(esau_config(steps=2, batch_size=4), run, progress=False, retrain=True).resumed_from == 0


# ----------------------------------------------------------------------------- data parallel


def test_two_gloo_processes_equal_one_process_with_the_same_global_batch(data_dir, tmp_path):
    cfg = esau_config(steps=4, batch_size=4, checkpoint_every=4, val_every=4)
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    one, two = fresh_run_dir(data_dir, tmp_path, "one"), fresh_run_dir(data_dir, tmp_path, "two")
    train(cfg, one, progress=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           str(29500 + os.getpid() % 1000), "-m", "ldct_nb.train", str(cfg_path), "--run-dir", str(two),
                           "--no-progress"], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    w1, w2 = weights(one / "ckpt/table1/esau_net/seed0/last.pt"), weights(two / "ckpt/table1/esau_net/seed0/last.pt")
    assert max(float((w1[k] - w2[k]).abs().max()) for k in w1) < 1e-5


def test_batches_do_not_depend_on_the_number_of_processes(data_dir):
    from ldct_nb.data.cache import open_split

    split = open_split(data_dir, "train")
    whole = BatchStream(split, batch_size=4, patch_size=16, seed=3)
    halves = [BatchStream(split, batch_size=4, patch_size=16, seed=3, rank=r, world_size=2) for r in (0, 1)]
    for step in (0, 1, 5):
        x, y = whole.batch(step)
        parts = [h.batch(step) for h in halves]
        torch.testing.assert_close(x, torch.cat([p[0] for p in parts]))
        torch.testing.assert_close(y, torch.cat([p[1] for p in parts]))
    assert not torch.equal(whole.batch(0)[0], whole.batch(1)[0])
    # every slice is seen once per epoch (8 slices, batch 4: steps 0 and 1 are epoch 0)
    seen = [i for s in (0, 1) for _, i in whole.indices(s)]
    assert sorted(seen) == list(range(8))
    with pytest.raises(ParameterError, match="divisible by the number of processes"):
        BatchStream(split, batch_size=3, patch_size=16, world_size=2)


# ----------------------------------------------------------------------------- configs and files


@pytest.mark.parametrize("bad, message", [
    ({"method": "nope"}, "unknown method 'nope'"),
    ({"method": "esau_net", "colour": 1}, r"unknown key\(s\) \['colour'\]"),
    ({"method": "esau_net", "steps": 0}, "steps must be an int >= 1"),
    ({"method": "esau_net", "val_split": "test"}, "must not be the test split"),
    ({"method": "esau_net", "preset": "lidnet"}, "unknown preset 'lidnet'"),
    ({"method": "ascon", "patch_size": 40}, "multiple of 16"),
    ({"method": "ascon", "ascon": {"ablation": "mse+vgg"}}, "ascon.ablation must be one of"),
    ({"method": "ascon", "ascon": {"depth": 3}}, r"unknown ascon key\(s\) \['depth'\]"),
    ({"method": "esau_net", "lr": "fast"}, "lr must be a number"),
    ({"method": "red_cnn", "ascon": {"denoiser": "unet"}}, "apply to method 'ascon' only"),
    ({"method": "esau_net", "perceptual": {"kind": "vgg"}}, "needs perceptual.weights"),
    ({"method": "ascon", "ascon": {"mac_heads": {"local_dim": 0}}}, "ascon.mac_heads.local_dim must be an int >= 1"),
    ({"method": "ascon", "ascon": {"mac_heads": {"depth": 2}}}, "ascon.mac_heads must map"),
    ({"method": "esau_net", "val_split": ""}, "val_split must be a split name or null"),
])
def test_bad_configs_are_refused_naming_the_key(bad, message):
    with pytest.raises(ParameterError, match=message):
        load_config(bad)


def test_yaml_config_with_yaml11_floats(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("method: esau_net\nlr: 1e-4\nlr_floor: 1.0e-6\n")
    cfg = load_config(path)
    assert cfg.lr == 1e-4 and cfg.lr_floor == 1e-6
    with pytest.raises(ParameterError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_impossible_sizes_are_refused(data_dir, tmp_path):
    run = fresh_run_dir(data_dir, tmp_path)
    with pytest.raises(ParameterError, match="patch_size 64 is larger than the 32x32 slices"):
        train(esau_config(patch_size=64), run, progress=False)
    with pytest.raises(ParameterError, match="bad keyword for method 'esau_net'|unknown ESAU-Net option"):
        train(esau_config(model={"depth": 3}), run, progress=False)


def test_checkpoint_write_interrupted_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 1, "w": torch.ones(3)})
    real_save = torch.save

    def dying_save(obj, fh, *a, **k):  # writes half a checkpoint, then the process "dies"
        real_save(obj, fh, *a, **k)
        fh.truncate(10)
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"step": 2, "w": torch.zeros(3)})
    monkeypatch.setattr(torch, "save", real_save)
    blob = load_checkpoint(path)
    assert blob["step"] == 1 and torch.equal(blob["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"step": 3, "w": torch.zeros(3)})
    assert load_checkpoint(path)["step"] == 1


def test_broken_checkpoints_are_refused_naming_the_file(tmp_path):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"\x00" * 20)
    with pytest.raises(ParameterError, match="last.pt' cannot be read .* truncated, damaged or not a checkpoint"):
        load_checkpoint(bad)
    torch.save({"state": 1}, bad)
    with pytest.raises(ParameterError, match="not a checkpoint written by ldct_nb.train"):
        load_checkpoint(bad)


def test_cosine_schedule_hand_values():
    # from base 1e-3 to the floor 1e-5 over 10 steps: half-way is the mean, the end is the floor
    assert cosine_factor(0, 10, 0.01) == 1.0
    assert math.isclose(cosine_factor(5, 10, 0.01), (1 + 0.01) / 2)
    assert math.isclose(cosine_factor(10, 10, 0.01), 0.01)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    assert math.isclose(set_learning_rates({"g": opt}, 5, 10, "cosine", 1e-5)["g"], (1e-3 + 1e-5) / 2)
    assert math.isclose(set_learning_rates({"g": opt}, 10, 10, "cosine", 1e-5)["g"], 1e-5)
    assert set_learning_rates({"g": opt}, 7, 10, "constant", 1e-5)["g"] == 1e-3


def test_load_denoiser_rebuilds_the_trained_network(data_dir, tmp_path):
    run = fresh_run_dir(data_dir, tmp_path)
    res = train(ascon_config(steps=2, checkpoint_every=2), run, progress=False)
    net = load_denoiser(res.last)
    assert not net.training
    sd = load_checkpoint(res.last)["networks"]["generator"]
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in sd.items())
    assert res.best is not None and (res.run_path / "metrics.csv").is_file() and (res.run_path / "metrics.json").is_file()


# ----------------------------------------------------------------------------- every method learns


SMALL = {
    "unet": dict(base=8, depth=2), "red_cnn": dict(channels=16), "edcnn": dict(sobel_ch=8, width=8),
    "wgan_vgg": dict(width=16), "du_gan": dict(channels=16), "cncl": dict(base=8, depth=2, fusion_width=8),
    "esau_net": dict(stem=8, widths=[16, 16, 32], heads=[1, 2, 2], bottleneck_heads=2, bottleneck_hidden=32),
}
CRITIC = {"wgan_vgg": dict(critic_width=8), "du_gan": dict(critic_width=8, critic_depth=2), "cncl": dict(critic_width=8)}


# Short runs need larger learning rates than the papers' (set for 100 epochs); WGAN-VGG uses
# LIDnet's preset (perceptual weight 100), whose generator stays alive at a higher rate.
LR = {"unet": 3e-3, "wgan_vgg": 3e-4}
PRESET = {"wgan_vgg": "lidnet"}


@pytest.mark.parametrize("method", ["unet", "red_cnn", "edcnn", "wgan_vgg", "du_gan", "cncl", "esau_net", "ascon"])
def test_every_table1_method_beats_the_ldct_input_on_a_tiny_data_set(data_dir, tmp_path, method):
    """150 steps on eight 32 x 32 slices at 1/100 of the dose: the validation PSNR of every
    method of ASCON's Table 1 ends above the LDCT input's (about 30 dB here)."""
    run = fresh_run_dir(data_dir, tmp_path)
    base = dict(steps=150, batch_size=4, patch_size=32, lr=LR.get(method, 1e-3), preset=PRESET.get(method, "paper"),
                val_every=150, checkpoint_every=150, log_every=50, perceptual={"steps": 200, "width": 8})
    if method == "ascon":
        cfg = {**base, "method": "ascon", "model": SMALL["esau_net"], "ascon": {**TINY_ASCON, "loss": TINY_LOSS}}
    else:
        cfg = {**base, "method": method, "model": SMALL[method], "method_options": CRITIC.get(method, {})}
    res = train(cfg, run, progress=False)
    val = res.validation[-1]
    assert val["ldct_psnr"] < 32  # the data set is as noisy as intended
    assert val["val_psnr"] > val["ldct_psnr"], (method, val)


def test_autocast_wraps_only_cuda_networks_and_returns_float32():
    """bf16 autocast applies to the networks' forward on CUDA only (the losses stay float32:
    checked on an H200, where an ESAU-Net trained with its SSIM loss inside autocast did not learn)."""
    from ldct_nb.train.steps import StepOptions, _to_float, autocast_forward

    net = torch.nn.Conv2d(1, 1, 3)
    forward = net.forward
    autocast_forward(net, StepOptions(device=torch.device("cpu"), amp=True))
    assert net.forward == forward  # CPU: untouched
    out = _to_float({"a": (torch.ones(2, dtype=torch.bfloat16), torch.ones(1, dtype=torch.int64)), "b": [torch.zeros(1, dtype=torch.float16)]})
    assert out["a"][0].dtype == torch.float32 and out["a"][1].dtype == torch.int64 and out["b"][0].dtype == torch.float32
