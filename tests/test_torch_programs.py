"""Programs written in the style of the public PyTorch tutorials (not copied from them) that use only the
torch API. Each is a function of the library module, so the same code runs as ``program(torch)`` and as
``program(convlens)`` — the only difference is the import — and trains for real on the embedded MNIST
subset (IDX files, read here with NumPy). The bar: convlens reaches what torch reaches; with the same
initial weights and batches, the loss curves coincide."""

import gzip
from pathlib import Path

import numpy as np
import pytest

import convlens

torch = pytest.importorskip("torch")

MNIST = Path(convlens.__file__).parent / "assets" / "mnist-mini"


def _idx(name: str) -> np.ndarray:
    raw = gzip.decompress((MNIST / name).read_bytes())
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


@pytest.fixture(scope="module")
def mnist():
    x = (_idx("train-images-idx3-ubyte.gz")[:2560, None] / 255.0 - 0.1307) / 0.3081
    xt = (_idx("t10k-images-idx3-ubyte.gz")[:1000, None] / 255.0 - 0.1307) / 0.3081
    return (x.astype(np.float32), _idx("train-labels-idx1-ubyte.gz")[:2560].astype(np.int64),
            xt.astype(np.float32), _idx("t10k-labels-idx1-ubyte.gz")[:1000].astype(np.int64))


# ---- 1. the examples' MNIST script, reshaped: Conv-Conv-Pool-Dropout-FC, NLL, Adadelta + StepLR ----------
def examples_style_mnist(torch, data, epochs=2, batch_size=64):
    nn, F, optim = torch.nn, torch.nn.functional, torch.optim
    from_numpy = torch.from_numpy

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, 3, 1)
            self.conv2 = nn.Conv2d(8, 16, 3, 1)
            self.dropout1 = nn.Dropout(0.25)
            self.dropout2 = nn.Dropout(0.5)
            self.fc1 = nn.Linear(2304, 64)
            self.fc2 = nn.Linear(64, 10)

        def forward(self, x):
            x = F.relu(self.conv1(x))
            x = F.relu(self.conv2(x))
            x = F.max_pool2d(x, 2)
            x = self.dropout1(x)
            x = torch.flatten(x, 1)
            x = F.relu(self.fc1(x))
            x = self.dropout2(x)
            return F.log_softmax(self.fc2(x), dim=1)

    torch.manual_seed(1)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    x, y, xt, yt = (from_numpy(a) for a in data)
    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x))
        for start in range(0, len(x), batch_size):
            index = order[start:start + batch_size]
            data_, target = x[index].to(device), y[index].to(device)
            optimizer.zero_grad()
            loss = F.nll_loss(model(data_), target)
            loss.backward()
            optimizer.step()
        scheduler.step()
    model.eval()
    test_loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(xt), 500):
            data_, target = xt[start:start + 500], yt[start:start + 500]
            output = model(data_)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    return test_loss / len(xt), correct / len(xt)


def test_examples_style_mnist_reaches_torchs_accuracy(mnist):
    ours = examples_style_mnist(convlens, mnist)
    theirs = examples_style_mnist(torch, mnist)
    assert ours[1] > 0.85 and theirs[1] > 0.85, (ours, theirs)
    assert abs(ours[1] - theirs[1]) < 0.05, (ours, theirs)


# ---- 2. the textbook's LeNet: lazy layers, xavier init via apply, SGD, the (values, indices) idiom ------
def textbook_style_lenet(torch, data, epochs=2, batch_size=64, lr=0.9, weights=None):
    nn = torch.nn

    def init_cnn(module):
        if type(module) is nn.Linear or type(module) is nn.Conv2d:
            nn.init.xavier_uniform_(module.weight)

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(), nn.LazyLinear(120), nn.Sigmoid(), nn.LazyLinear(84), nn.Sigmoid(), nn.LazyLinear(10))
    x, y, xt, yt = (torch.tensor(a) for a in data)
    net(x[:1])  # a dummy batch materialises the lazy layers, then they are initialised
    net.apply(init_cnn)
    if weights is not None:  # a checkpoint to start from
        net.load_state_dict(weights)
    loss_fn = nn.CrossEntropyLoss()
    trainer = torch.optim.SGD(net.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        for start in range(0, len(x), batch_size):
            X, Y = x[start:start + batch_size], y[start:start + batch_size]
            loss = loss_fn(net(X), Y)
            trainer.zero_grad()
            loss.backward()
            trainer.step()
            losses.append(loss.item())
    with torch.no_grad():
        _, predicted = torch.max(net(xt), 1)
    return losses, predicted.numpy(), net


def test_textbook_style_lenet_with_lazy_layers_trains_as_torch_from_the_same_start(mnist):
    # the sigmoid LeNet is slow to leave its plateau: from two different random starts the two libraries
    # may leave it at different epochs, so this program starts both from torch's initial weights
    _, _, start = textbook_style_lenet(torch, mnist, epochs=0)
    weights = {k: v.detach().numpy().copy() for k, v in start.state_dict().items()}
    ours, our_pred, net = textbook_style_lenet(convlens, mnist, weights=weights)
    theirs, their_pred, their_net = textbook_style_lenet(torch, mnist, weights={k: torch.tensor(v) for k, v in
                                                                                   weights.items()})
    assert [type(m) for m in net] == [getattr(convlens.nn, type(m).__name__) for m in their_net]
    np.testing.assert_allclose(ours, theirs, rtol=2e-4, atol=2e-5)
    assert (our_pred == their_pred).mean() > 0.99


# ---- 3. an encoder-decoder: the same initial weights and batches give the same losses ----------------------
def autoencoder(torch):
    nn = torch.nn

    class Autoencoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.encode = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.SiLU())
            self.pool = nn.MaxPool2d(2, return_indices=True)
            self.down = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.Mish())
            self.up = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)
            self.unpool = nn.MaxUnpool2d(2)
            self.refine = nn.ModuleDict({"norm": nn.LayerNorm([8, 28, 28]), "out": nn.Conv2d(8, 1, 3, padding=1)})
            self.resize = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            self.gate = nn.Parameter(torch.ones(1))

        def forward(self, x):
            h = self.encode(x)
            pooled, indices = self.pool(h)
            z = self.up(self.down(pooled))
            h = self.unpool(z + pooled, indices) + self.resize(pooled) * self.gate
            return self.refine["out"](nn.functional.elu(self.refine["norm"](h)))

    return Autoencoder()


def train_autoencoder(torch, model, batches, steps):
    optimizer = torch.optim.NAdam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.2, total_iters=3)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, decay], milestones=[3])
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([2.0], dtype=torch.float64))
    losses = []
    for step in range(steps):
        x = torch.from_numpy(batches[step % len(batches)])
        target = (x > 0.5).double()
        loss = loss_fn(model(x), target) + torch.nn.functional.smooth_l1_loss(model(x).sigmoid(), target, beta=0.5)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return losses


def test_encoder_decoder_trains_identically_from_the_same_weights(mnist):
    theirs = autoencoder(torch).double()
    ours = autoencoder(convlens).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = mnist[0][:96].astype(np.float64)
    batches = [x[i:i + 16] for i in range(0, 96, 16)]
    their_losses = train_autoencoder(torch, theirs, batches, 12)
    our_losses = train_autoencoder(convlens, ours, batches, 12)
    np.testing.assert_allclose(our_losses, their_losses, rtol=1e-6)
    assert our_losses[-1] < our_losses[0]
    for name, p in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[name].numpy(), p.numpy(), rtol=1e-5, atol=1e-7, err_msg=name)
