"""Grad-CAM against a hand-worked case, and `gradcam` drawing a run's kept models."""

import numpy as np
import torch
from torch import nn

from mer_bench.benchmark.cli import main
from mer_bench.methods.gradcam import grad_cam


class Pooled(nn.Module):
    """A 1x1 conv copying the input into channel 0 (channel 1 zero), mean pooling, and a
    linear layer reading only channel 0 for class 0."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1, bias=False)
        self.linear = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, 0.0]).view(2, 1, 1, 1))
            self.linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))

    def forward(self, x):
        return self.linear(self.conv(x).mean(dim=(2, 3)))


def test_grad_cam_of_a_linear_read_is_the_map_it_reads():
    image = torch.rand(1, 6, 6)
    cam, chosen = grad_cam(Pooled(), "conv", image, target=0)
    expected = (image[0] - image[0].min()) / (image[0].max() - image[0].min())
    assert chosen == 0 and np.allclose(cam, expected.numpy(), atol=1e-6)
    flat, _ = grad_cam(Pooled(), "conv", image, target=1)  # class 1 reads the zero channel
    assert np.allclose(flat, 0)


def test_gradcam_draws_the_runs_that_kept_weights(results, capsys):
    assert main(["run", "--methods", "skd_tstsan,ststnet.shared", "--budget", "2", "--folds",
                 "1", "--recipe", "batch_size=4", "--keep", "weights", "--results",
                 str(results), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["gradcam", "--clips", "3", "--results", str(results)]) == 0
    captured = capsys.readouterr()
    drawn = captured.out.split()
    assert len(drawn) == 1 and "skd_tstsan_recipe.batch_size=4__synthetic-5" in drawn[0]
    assert "ststnet.shared" in captured.err and "no Grad-CAM layer" in captured.err
