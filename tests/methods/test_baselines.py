"""The baselines' own facts: parameter counts from their layer lists, HTNet's block-local
attention, LBP-TOP's three planes, the timm CNN's local checkpoints."""

import numpy as np
import pytest
import torch

from mer_bench.methods import METHODS
from mer_bench.methods.htnet import BlockTransformer
from mer_bench.methods.lbp_top import lbp_top


def trainable(name: str, classes: int = 5) -> int:
    model = METHODS.build(name).build_model(classes)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def conv(c_in, c_out, k, bias=True):
    return c_in * c_out * k * k + (c_out if bias else 0)


def test_off_apexnet_counts_two_lenet_streams_and_two_1024_layers():
    stream = conv(1, 6, 5) + conv(6, 16, 5)
    expected = 2 * stream + conv(2 * 784, 1024, 1) + conv(1024, 1024, 1) + conv(1024, 5, 1)
    assert trainable("off_apexnet") == expected == 2_666_525


def test_tscnn_counts_three_streams_and_one_linear_layer():
    def stream(c):
        return conv(c, 64, 5) + 2 * conv(64, 64, 3) + conv(64, 128, 3) + conv(128, 128, 3)

    expected = stream(1) + stream(16) + stream(4) + conv(3 * 128 * 11 * 11, 5, 1)
    assert trainable("tscnn") == expected == 1_152_005


def test_htnet_counts_the_release_configuration():
    def layer(d, heads):
        inner = d // heads * heads
        attention = 2 * d + d * 3 * inner + inner * d + d
        feed_forward = 2 * d + d * 4 * d + 4 * d + 4 * d * d + d
        return attention + feed_forward

    widths, heads, depths = (256, 512, 1024), (3, 6, 12), (2, 2, 10)
    expected = conv(3 * 49, 256, 1) + sum(1 + depth * layer(d, h)  # +1: positional bias
                                          for d, h, depth in zip(widths, heads, depths))
    expected += sum(conv(d, 2 * d, 3) + 2 * 2 * d for d in widths[:2])  # aggregations
    expected += 2 * 1024 + conv(1024, 5, 1)  # head
    assert trainable("htnet") == expected == 139_585_032


def test_htnet_attention_stays_within_its_blocks():
    torch.manual_seed(0)
    transformer = BlockTransformer(channels=8, heads=2, depth=1, tokens=4, blocks=2).eval()
    x = torch.randn(1, 8, 4, 4)
    poked = x.clone()
    poked[0, :, 0, 0] += torch.randn(8)  # a token of the top-left 2x2 block (not a constant:
    # layer norm would remove it)
    changed = (transformer(poked) - transformer(x)).abs().sum(dim=1)[0] > 1e-6
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[:2, :2] = True
    assert torch.equal(changed, expected)


def test_htnet_blocks_are_cut_and_pasted_back_in_place():
    transformer = BlockTransformer(channels=3, heads=1, depth=0, tokens=4, blocks=2)
    with torch.no_grad():
        transformer.position.zero_()
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(transformer(x), x)


def test_lbp_top_histograms_of_a_still_uniform_sequence_are_one_hot():
    features = lbp_top(np.full((3, 40, 40), 100.0)).reshape(25, 3, 59)
    assert np.allclose(features.sum(axis=2), 1.0) and np.allclose(features.max(axis=2), 1.0)


def test_a_flash_at_the_apex_changes_only_the_temporal_planes():
    still = lbp_top(np.full((3, 40, 40), 100.0)).reshape(25, 3, 59)
    flash = lbp_top(np.stack([np.full((40, 40), v) for v in (100.0, 150.0, 100.0)]))
    flash = flash.reshape(25, 3, 59)
    assert np.array_equal(flash[:, 0], still[:, 0])  # XY: each frame is still uniform
    assert not np.array_equal(flash[:, 1], still[:, 1])  # XT
    assert not np.array_equal(flash[:, 2], still[:, 2])  # YT


def test_lbp_top_needs_three_frames():
    with pytest.raises(ValueError, match="at least 3 frames"):
        lbp_top(np.zeros((2, 20, 20)))


def test_timm_cnn_loads_a_local_rgb_checkpoint_into_its_grey_stem(tmp_path):
    import timm

    torch.manual_seed(0)
    rgb = timm.create_model("resnet18", pretrained=False, num_classes=1000)
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": rgb.state_dict()}, path)
    model = METHODS.build("timm_apex", checkpoint=str(path)).build_model(5)
    assert torch.allclose(model.conv1.weight, rgb.conv1.weight.sum(dim=1, keepdim=True))
    assert torch.equal(model.layer4[1].conv2.weight, rgb.layer4[1].conv2.weight)
    assert model.fc.weight.shape == (5, 512)


def test_timm_cnn_refuses_a_checkpoint_of_another_model_and_unknown_names(tmp_path):
    import timm

    path = tmp_path / "other.pth"
    torch.save(timm.create_model("resnet34", pretrained=False).state_dict(), path)
    with pytest.raises(ValueError, match="does not fit"):
        METHODS.build("timm_apex", checkpoint=str(path)).build_model(5)
    with pytest.raises(ValueError, match="list_models"):
        METHODS.build("timm_apex", model="resnet_nonexistent").build_model(5)
