"""The course's building block, CONV → ReLU → POOL, on one real digit: forward, then back-propagation.

    python examples/course_block.py

1. The convolution starts from three hand-designed kernels (Sobel x, Sobel y, blur), so its feature maps
   mean something before any learning.
2. Each stage's output size follows W₂ = (W₁ − F + 2P)/S + 1.
3. A loss on the pooled maps is back-propagated; the gradients of the kernels and of the image are
   checked against numerical derivatives (float64 central differences).
"""

import numpy as np

import convlens
from convlens import nn
from convlens.data import mnist_mini
from convlens.filters import KERNELS
from convlens.nn import functional as F
from convlens.testing import gradcheck

convlens.manual_seed(0)
image, label = mnist_mini(train=False)[0]  # uint8 (1, 28, 28)
x = convlens.tensor(image[None].astype(np.float32) / 255, requires_grad=True)  # (N, C, H, W) = (1, 1, 28, 28)

conv = nn.Conv2d(1, 3, kernel_size=3, padding=1)
with convlens.no_grad():
    conv.weight.data[:] = np.stack([KERNELS[k] for k in ("sobel-x", "sobel-y", "blur")])[:, None]
    conv.bias.data[:] = 0
block = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2))

print(f"a {label} of shape {tuple(x.shape)}")
h = x
for layer in block:
    h = layer(h)
    print(f"  {type(layer).__name__:<10} -> {tuple(h.shape)}")
print("  conv: W2 = (28 - 3 + 2*1)/1 + 1 = 28;  pool: W2 = (28 - 2)/2 + 1 = 14")

# a toy objective: make the pooled maps match a target (here: all zeros) in the mean squared sense
loss = (h * h).mean()
loss.backward()
print(f"loss {loss.item():.5f}")
print(f"dL/dweight {tuple(conv.weight.grad.shape)}, dL/dbias {tuple(conv.bias.grad.shape)}, "
      f"dL/dimage {tuple(x.grad.shape)}")
print("dL/dweight of the Sobel-x kernel:\n", np.array2string(conv.weight.grad.numpy()[0, 0], precision=5))

# the same computation in float64 on a crop, against numerical derivatives
crop = convlens.tensor(x.detach().numpy()[:, :, 8:16, 8:16].astype(np.float64), requires_grad=True)
w = convlens.tensor(conv.weight.detach().numpy().astype(np.float64), requires_grad=True)
b = convlens.tensor(conv.bias.detach().numpy().astype(np.float64), requires_grad=True)


def block64(inp, weight, bias):
    return F.max_pool2d(F.relu(F.conv2d(inp, weight, bias, padding=1)), 2)


gradcheck(block64, [crop, w, b])
print("gradcheck: autograd's gradients match the numerical ones")
