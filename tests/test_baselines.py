"""Every registered model: shapes, its own recipe learns on a fixed batch; baseline
architecture facts; perceptual-loss feature networks."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ldct_nb.errors import ParameterError
from ldct_nb.losses.adversarial import gradient_penalty, lsgan_loss
from ldct_nb.losses.perceptual import PerceptualLoss
from ldct_nb.losses.ssim import multiscale_ssim_loss
from ldct_nb.models import available, build, presets
from ldct_nb.models.baselines.common import WGANCritic
from ldct_nb.models.baselines.du_gan import DualDomainDiscriminator
from ldct_nb.models.baselines.edcnn import SobelConv
from ldct_nb.models.feature_net import NDCTFeatureNet, VGGFeatures, load_feature_net, save_feature_net
from ldct_nb.models.sobel import sobel_magnitude
from ldct_nb.train.feature_net import train_feature_net
from ldct_nb.train.methods import METHODS, build_method
from ldct_nb.train.methods.du_gan import cutmix_mask

torch.set_num_threads(1)

SMALL = {
    "esau_net": dict(stem=8, widths=(8, 16, 16), heads=(1, 2, 2), bottleneck_heads=2, bottleneck_hidden=16),
    "unet": dict(base=8, depth=2),
    "red_cnn": dict(channels=16),
    "edcnn": dict(sobel_ch=8, width=8),
    "wgan_vgg": dict(width=8),
    "du_gan": dict(channels=16),
    "cncl": dict(base=8, depth=2, fusion_width=8),
    "cpce": dict(width=8),
    "map_nn": dict(width=8),
    "ssms": dict(width=8),
    "res_hlf": dict(width=8, blocks=2),
}
CRITIC = {"wgan_vgg": dict(critic_width=8), "du_gan": dict(critic_width=8, critic_depth=2), "cncl": dict(critic_width=8),
          "cpce": dict(critic_width=8), "map_nn": dict(critic_width=8), "ssms": dict(critic_width=8),
          "res_hlf": dict(critic_width=8)}
EXPECTED = {"esau_net", "unet", "red_cnn", "edcnn", "wgan_vgg", "du_gan", "cncl", "cpce", "map_nn", "ssms", "res_hlf"}


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(0)
    y = torch.nn.functional.avg_pool2d(torch.rand(2, 1, 36, 36), 5, 1)  # smooth 32 x 32 "NDCT"
    return y + 0.05 * torch.randn_like(y), y


@pytest.fixture(scope="module")
def features():
    net = NDCTFeatureNet(4)
    net.trained_steps = 1  # a stand-in extractor: these tests check the recipe mechanics, not perceptual quality
    return net


def test_registry_covers_every_method():
    assert set(available()) == EXPECTED
    assert set(METHODS) == EXPECTED  # every network has its training recipe
    assert presets("wgan_vgg") == ["paper", "lidnet"] and presets("red_cnn") == ["paper"]
    with pytest.raises(ParameterError, match="preset 'lidnet'.*red_cnn.*paper"):
        build("red_cnn", preset="lidnet")
    with pytest.raises(ParameterError, match="unknown keyword 'nonsense' for model 'red_cnn'"):
        build("red_cnn", nonsense=3)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_output_shape_and_dtype(name):
    torch.manual_seed(0)
    net = build(name, **SMALL[name])
    x = torch.rand(2, 1, 29, 35)
    y = net(x)
    assert y.shape == x.shape and y.dtype == torch.float32 and torch.isfinite(y).all()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_thirty_steps_on_a_fixed_batch_lower_the_loss(name, batch, features):
    """The method's own recipe (critic steps included) at lr 1e-3: the content/pixel part falls clearly."""
    x, y = batch
    torch.manual_seed(0)
    spec = build_method(name, feature_extractor=features, **SMALL[name], **CRITIC.get(name, {}))
    spec.generator_optim = dataclasses.replace(spec.generator_optim, lr=1e-3)
    g_opt, c_opt = spec.make_optimizers()
    history, totals = [], []
    for _ in range(30):
        if spec.critic is not None:
            with torch.no_grad():
                out = spec.generator(x)
            c_loss, c_parts = spec.critic_loss(x, y, out)
            c_opt.zero_grad()
            c_loss.backward()
            c_opt.step()
            assert np.isfinite(c_parts["total"])
        loss, parts, out = spec.generator_loss(x, y)
        g_opt.zero_grad()
        loss.backward()
        g_opt.step()
        history.append(parts["pixel"])
        totals.append(parts["total"])
    assert out.shape == y.shape
    assert history[-1] < 0.8 * history[0], history
    if spec.critic is None:  # the method's own training loss (not only its pixel part) falls clearly
        assert totals[-1] < 0.5 * totals[0], totals


@pytest.mark.parametrize("name", ["wgan_vgg", "du_gan", "cncl", "cpce", "map_nn", "ssms", "res_hlf"])
def test_critic_steps_lower_the_critic_loss(name, batch, features):
    """Training the critic alone on fixed real / fake batches lowers its own loss; for the
    WGAN-GP methods the Wasserstein estimate D(real) - D(fake) also grows (a critic loss with
    the sign flipped would shrink it)."""
    x, y = batch
    torch.manual_seed(0)
    spec = build_method(name, feature_extractor=features, **SMALL[name], **CRITIC.get(name, {}))
    spec.critic_optim = dataclasses.replace(spec.critic_optim, lr=1e-3)
    _, c_opt = spec.make_optimizers()
    with torch.no_grad():
        out = spec.generator(x)
    wgan = name in ("wgan_vgg", "cpce", "map_nn", "ssms")

    def separation():  # computed here, not read from the recipe's own report
        with torch.no_grad():
            return float(spec.critic(y).mean() - spec.critic(out).mean()) if wgan else 0.0

    torch.manual_seed(1)
    first = None
    for _ in range(15):
        c_loss, _ = spec.critic_loss(x, y, out)
        first = first or (float(c_loss.detach()), separation())
        c_opt.zero_grad()
        c_loss.backward()
        c_opt.step()
    assert float(spec.critic_loss(x, y, out)[0].detach()) < first[0]
    if wgan:
        assert separation() > first[1]


def test_perceptual_methods_refuse_without_extractor():
    for name in ("edcnn", "wgan_vgg", "cpce"):
        with pytest.raises(ParameterError, match="feature_extractor"):
            build_method(name)
        with pytest.raises(ParameterError, match="feature_extractor is an untrained NDCTFeatureNet"):
            build_method(name, feature_extractor=NDCTFeatureNet(4))
    with pytest.raises(ParameterError, match="feature_extractor"):
        build_method("map_nn", preset="lidnet")
    assert build_method("map_nn").critic is not None  # its paper loss needs no perceptual network


def test_method_specs_carry_paper_settings(features):
    w = build_method("wgan_vgg", feature_extractor=features)
    assert (w.generator_optim.lr, w.generator_optim.betas, w.n_critic) == (1e-5, (0.5, 0.9), 4)
    lid = build_method("wgan_vgg", "lidnet", feature_extractor=features)
    assert (lid.generator_optim.lr, lid.critic_optim.lr) == (1e-4, 4e-4)
    assert build_method("red_cnn").critic is None and build_method("unet").critic is None
    assert isinstance(build_method("du_gan").critic, DualDomainDiscriminator)
    assert "MethodSpec('cncl'" in repr(build_method("cncl", **SMALL["cncl"]))


def test_baseline_architecture_facts():
    red = build("red_cnn")
    # RED-CNN: 5 convs + 5 deconvs of 5x5, 96 filters
    convs = [m for m in red.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert len(convs) == 10 and all(m.kernel_size == (5, 5) for m in convs)
    # MAP-NN as LIDnet uses it: 3 modules; every stage is an image
    mapnn = build("map_nn", width=8)
    assert len(mapnn.stages(torch.rand(1, 1, 20, 20))) == 3
    # CNCL: noise and content predictors, fused
    cncl = build("cncl", **SMALL["cncl"])
    p = cncl.predict(torch.rand(1, 1, 16, 16))
    assert set(p) == {"content", "noise", "fused"}
    # WGAN-VGG critic: a 64 x 64 patch reaches the FC layer at 8 x 8 without pooling
    crit = WGANCritic(8)
    assert crit.features[:-1](torch.rand(1, 1, 64, 64)).shape[-2:] == (8, 8)
    # Res-HLF learns the noise: output = input - predicted noise
    res = build("res_hlf", width=8, blocks=1).eval()
    x = torch.rand(1, 1, 12, 12)
    torch.testing.assert_close(res(x), x - res.noise(x))


def test_edcnn_sobel_is_a_scaled_sobel_filter():
    sob = SobelConv(8)
    ramp = torch.arange(10.0).repeat(10, 1)[None, None]  # intensity grows by 1 per column
    out = sob(ramp)[..., 1:-1, 1:-1]
    torch.testing.assert_close(out[:, 0], torch.full_like(out[:, 0], 8.0))  # horizontal Sobel of a unit ramp
    torch.testing.assert_close(out[:, 1], torch.zeros_like(out[:, 1]))  # vertical Sobel sees nothing
    with torch.no_grad():
        sob.factor[0] = 0.5
    torch.testing.assert_close(sob(ramp)[:, 0, 1:-1, 1:-1], torch.full((1, 8, 8), 4.0))


def test_loss_pieces():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 32, 32)
    assert multiscale_ssim_loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert lsgan_loss(torch.ones(3), True).item() == 0.0 and lsgan_loss(torch.ones(3), False).item() == 1.0
    flat = torch.full((1, 1, 8, 8), 0.3)
    assert sobel_magnitude(flat).max().item() < 1e-5
    # gradient penalty is zero for a critic with unit-norm input gradient everywhere
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1, bias=False))
    with torch.no_grad():
        lin[1].weight.fill_(0.25)  # ||w|| = 1
    assert gradient_penalty(lin, torch.rand(4, 1, 4, 4), torch.rand(4, 1, 4, 4)).item() == pytest.approx(0.0, abs=1e-10)
    m = cutmix_mask((3, 1, 16, 16), "cpu")
    assert set(m.unique().tolist()) <= {0.0, 1.0} and m.shape == (3, 1, 16, 16)


def test_perceptual_loss_zero_for_equal_and_extractor_frozen(features):
    loss = PerceptualLoss(features)
    x = torch.rand(1, 1, 16, 16)
    assert loss(x, x).item() == 0.0 and loss(x, x.flip(-1)).item() > 0
    assert not any(p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.extractor.training


def test_feature_net_trains_saves_and_loads(tmp_path):
    rng = np.random.default_rng(0)
    hu = (rng.normal(0, 100, (3, 40, 40)) + np.linspace(-1000, 1000, 40)).astype(np.float32)
    net, losses = train_feature_net(hu, steps=25, patch_size=16, batch_size=4, width=4, lr=3e-3)
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    path = save_feature_net(net, tmp_path / "fnet.pt")
    again = load_feature_net(path)
    x = torch.rand(1, 1, 16, 16)
    for a, b in zip(net(x), again(x)):
        torch.testing.assert_close(a, b)
    untrained = NDCTFeatureNet(4)
    save_feature_net(untrained, tmp_path / "untrained.pt")
    with pytest.raises(ParameterError, match="untrained"):
        load_feature_net(tmp_path / "untrained.pt")
    with pytest.raises(ParameterError, match="patch_size"):
        train_feature_net(hu, steps=1, patch_size=64)


KILL_DURING_SAVE = """
import os, signal, sys
import torch
from ldct_nb.models import feature_net
torch.manual_seed(1)
net = feature_net.NDCTFeatureNet(4)
net.trained_steps = 2

def die(src, dst):
    assert os.path.getsize(src) > 0  # the new file is written in full beside the old one
    os.kill(os.getpid(), signal.SIGKILL)

feature_net.os.replace = die
feature_net.save_feature_net(net, sys.argv[1])
print("not killed")
"""


def test_a_process_killed_while_saving_a_feature_net_leaves_the_old_file(tmp_path):
    import subprocess
    import sys

    torch.manual_seed(0)
    old = NDCTFeatureNet(4)
    old.trained_steps = 1
    path = save_feature_net(old, tmp_path / "fnet.pt")
    script = tmp_path / "killed.py"
    script.write_text(KILL_DURING_SAVE)
    done = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == -9 and "not killed" not in done.stdout, done.stderr  # really killed midway
    assert len(list(tmp_path.glob(".fnet.pt.*.tmp"))) == 1  # the new file was written, not yet renamed
    again = load_feature_net(path)
    assert again.trained_steps == 1
    for a, b in zip(old.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_vgg_features_need_user_weights(tmp_path):
    with pytest.raises(ParameterError, match="weights_path"):
        VGGFeatures(tmp_path / "missing.pth")
    bogus = tmp_path / "bogus.pth"
    torch.save({"features.0.weight": torch.zeros(3)}, bogus)
    with pytest.raises(ParameterError, match="weights_path"):
        VGGFeatures(bogus, layers=("relu1_2",))
    from torchvision.models import vgg19

    state = {k: v for k, v in vgg19(weights=None).state_dict().items() if k.startswith("features.")}
    good = tmp_path / "vgg19.pth"
    torch.save(state, good)
    vgg = VGGFeatures(good, layers=("relu1_2", "relu2_2"))
    f1, f2 = vgg(torch.rand(1, 1, 32, 32))
    assert f1.shape == (1, 64, 32, 32) and f2.shape == (1, 128, 16, 16)
    with pytest.raises(ParameterError, match="layers"):
        VGGFeatures(good, layers=("conv9",))


def test_bad_inputs_raise_parameter_errors_naming_the_problem(tmp_path):
    with pytest.raises(ParameterError, match="at least 21 x 21"):
        build("red_cnn", channels=4)(torch.rand(1, 1, 20, 40))
    assert build("red_cnn", channels=4)(torch.rand(1, 1, 21, 21)).shape == (1, 1, 21, 21)
    with pytest.raises(ParameterError, match="at least 9 x 9"):
        build("cpce", width=4)(torch.rand(1, 1, 8, 30))
    with pytest.raises(ParameterError, match="at least 9 x 9"):
        build("map_nn", width=4)(torch.rand(1, 1, 30, 8))
    with pytest.raises(ParameterError, match=r"UNet: x must be a \(B, C, H, W\) tensor, got shape \(16, 16\)"):
        build("unet", base=4, depth=1)(torch.rand(16, 16))
    with pytest.raises(ParameterError, match="sobel_ch"):
        build("edcnn", sobel_ch=6)
    with pytest.raises(ParameterError, match="widths"):
        build("esau_net", widths=5)
    with pytest.raises(ParameterError, match="stem"):
        build("esau_net", stem=0)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ParameterError, match="junk.pt"):
        load_feature_net(junk)


def test_edcnn_output_is_leaky_relu_of_the_residual_sum():
    """Authors' code: ``out = LeakyReLU(x + out_8)``."""
    net = build("edcnn", sobel_ch=4, width=4)
    with torch.no_grad():
        for p in net.blocks[-1].parameters():
            p.zero_()  # the last block now adds nothing
    x = torch.linspace(-1, 1, 100).reshape(1, 1, 10, 10)
    # .forward: the arithmetic on negative values, past the [0, 1] input check of build()
    torch.testing.assert_close(net.forward(x), torch.nn.functional.leaky_relu(x, 0.01))


def test_lidnet_presets_use_lidnets_wgan_gp_objective(features):
    """LIDnet appendix A: every GAN baseline trains with eq. (5)/(7) (Wasserstein, gradient penalty 10),
    generator lr 1e-4, critic lr 4e-4."""
    real = torch.rand(2, 1, 32, 32)
    for name in ("wgan_vgg", "cpce", "map_nn", "ssms", "res_hlf"):
        if "lidnet" not in presets(name):
            continue
        kwargs = {"feature_extractor": features} if name in ("wgan_vgg", "cpce", "map_nn") else {}
        spec = build_method(name, "lidnet", **kwargs)
        if spec.critic is None:
            continue
        assert isinstance(spec.critic, WGANCritic), name
        assert (spec.generator_optim.lr, spec.critic_optim.lr) == (1e-4, 4e-4), name
        with torch.no_grad():
            out = spec.generator(real)
        _, parts = spec.critic_loss(real, real, out)
        assert "gradient_penalty" in parts, name


@pytest.mark.parametrize("name", ["wgan_vgg", "ssms"])
def test_generators_ending_in_relu_are_alive_at_initialisation(name):
    """Eight conv + ReLU layers, the last one too: with PyTorch's default initialisation the
    output was identically 0 (no gradient ever) for about half of the seeds; every seed of 20
    must now give a non-zero output and a gradient at the first layer."""
    for seed in range(20):
        torch.manual_seed(seed)
        net = build(name, width=8)
        x = torch.rand(2, 1, 24, 24)
        out = net(x)
        assert out.abs().sum() > 0, seed
        out.mean().backward()
        first = next(net.parameters())
        assert first.grad is not None and first.grad.abs().sum() > 0, seed
