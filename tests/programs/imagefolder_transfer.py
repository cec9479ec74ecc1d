# In the style of the PyTorch "Transfer learning" tutorial's data pipeline: an ImageFolder per phase,
# RandomResizedCrop + flip for training, Resize + CenterCrop for validation, ImageNet normalisation,
# a train/val loop with set_grad_enabled, StepLR, and the best weights kept in a file (a small CNN stands
# in for the pretrained ResNet).
import os
import tempfile

import torch
import torch.nn as nn
import torch.optim as optim
from torch.optim import lr_scheduler
from torchvision import datasets, transforms

mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
data_transforms = {
    "train": transforms.Compose([transforms.RandomResizedCrop(32, scale=(0.5, 1.0)), transforms.RandomHorizontalFlip(),
                                 transforms.ToTensor(), transforms.Normalize(mean, std)]),
    "val": transforms.Compose([transforms.Resize(36), transforms.CenterCrop(32), transforms.ToTensor(),
                               transforms.Normalize(mean, std)]),
}
data_dir = "data/hymenoptera_data"
image_datasets = {x: datasets.ImageFolder(os.path.join(data_dir, x), data_transforms[x]) for x in ["train", "val"]}
dataloaders = {x: torch.utils.data.DataLoader(image_datasets[x], batch_size=8, shuffle=True, num_workers=2)
               for x in ["train", "val"]}
dataset_sizes = {x: len(image_datasets[x]) for x in ["train", "val"]}
class_names = image_datasets["train"].classes
device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
print(class_names, dataset_sizes)


def train_model(model, criterion, optimizer, scheduler, num_epochs):
    with tempfile.TemporaryDirectory() as tempdir:
        best_path = os.path.join(tempdir, "best_model_params.pt")
        torch.save(model.state_dict(), best_path)
        best_acc = 0.0
        for epoch in range(num_epochs):
            for phase in ["train", "val"]:
                model.train() if phase == "train" else model.eval()
                running_loss, running_corrects = 0.0, 0
                for inputs, labels in dataloaders[phase]:
                    inputs, labels = inputs.to(device), labels.to(device)
                    optimizer.zero_grad()
                    with torch.set_grad_enabled(phase == "train"):
                        outputs = model(inputs)
                        _, preds = torch.max(outputs, 1)
                        loss = criterion(outputs, labels)
                        if phase == "train":
                            loss.backward()
                            optimizer.step()
                    running_loss += loss.item() * inputs.size(0)
                    running_corrects += (preds == labels.data).sum().item()
                if phase == "train":
                    scheduler.step()
                epoch_acc = running_corrects / dataset_sizes[phase]
                print(f"epoch {epoch} {phase} Loss: {running_loss / dataset_sizes[phase]:.4f} Acc: {epoch_acc:.4f}")
                if phase == "val" and epoch_acc > best_acc:
                    best_acc = epoch_acc
                    torch.save(model.state_dict(), best_path)
        print(f"Best val Acc: {best_acc:4f}")
        model.load_state_dict(torch.load(best_path, weights_only=True))
    return model


torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                      nn.Flatten(), nn.Linear(16, len(class_names))).to(device)
criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
scheduler = lr_scheduler.StepLR(optimizer, step_size=7, gamma=0.1)
model = train_model(model, criterion, optimizer, scheduler, num_epochs=8)
