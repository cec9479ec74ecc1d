# A custom Dataset in the style of the PyTorch "Datasets & DataLoaders" tutorial: image files listed in
# an annotations CSV, decoded in __getitem__, split with random_split, rebalanced with a
# WeightedRandomSampler, loaded by worker processes (threads on convlens); then a float TensorDataset of
# the learned features feeding a linear probe.
import csv
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset, TensorDataset, WeightedRandomSampler, random_split
from torchvision import transforms


class CustomImageDataset(Dataset):
    def __init__(self, annotations_file, img_dir, transform=None, target_transform=None):
        with open(annotations_file) as f:
            self.img_labels = [(row[0], int(row[1])) for row in csv.reader(f)]
        self.img_dir, self.transform, self.target_transform = img_dir, transform, target_transform

    def __len__(self):
        return len(self.img_labels)

    def __getitem__(self, idx):
        name, label = self.img_labels[idx]
        image = Image.open(os.path.join(self.img_dir, name)).convert("RGB")
        if self.transform:
            image = self.transform(image)
        if self.target_transform:
            label = self.target_transform(label)
        return image, label


torch.manual_seed(0)
full = CustomImageDataset("data/labels.csv", "data/images",
                          transform=transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor()]))
train_set, test_set = random_split(full, [0.75, 0.25], generator=torch.Generator().manual_seed(42))
labels = [full.img_labels[i][1] for i in train_set.indices]
counts = [labels.count(c) for c in (0, 1)]
weights = [1.0 / counts[c] for c in labels]
sampler = WeightedRandomSampler(weights, num_samples=len(weights), replacement=True)
train_loader = DataLoader(train_set, batch_size=16, sampler=sampler, num_workers=2)
test_loader = DataLoader(test_set, batch_size=32, num_workers=2)
print(f"{len(train_set)} train / {len(test_set)} test images, class counts {counts}")


class Features(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 8 * 8, 2)

    def embed(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return x.reshape(x.shape[0], -1)

    def forward(self, x):
        return self.fc(self.embed(x))


model = Features()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
for epoch in range(6):
    model.train()
    for images, targets in train_loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), targets)
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch + 1}: last batch loss {loss.item():.3f}")

model.eval()
with torch.no_grad():
    feats = [(model.embed(x), y) for x, y in DataLoader(train_set, batch_size=64)]
    test_feats = [(model.embed(x), y) for x, y in test_loader]
probe_data = TensorDataset(torch.cat([f for f, _ in feats]), torch.cat([y for _, y in feats]))
probe = nn.Linear(16 * 8 * 8, 2)
probe_opt = torch.optim.SGD(probe.parameters(), lr=0.05, momentum=0.9)
for _ in range(10):
    for f, y in DataLoader(probe_data, batch_size=32, shuffle=True):
        probe_opt.zero_grad()
        F.cross_entropy(probe(f), y).backward()
        probe_opt.step()
with torch.no_grad():
    correct = sum(int((probe(f).argmax(1) == y).sum().item()) for f, y in test_feats)
    direct = sum(int((model(x).argmax(1) == y).sum().item()) for x, y in test_loader)
print(f"network accuracy {100 * direct / len(test_set):.1f}%, probe accuracy {100 * correct / len(test_set):.1f}%")
print("probe features", tuple(probe_data.tensors[0].shape))
