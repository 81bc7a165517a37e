# The cubic as a Linear layer on (x, x^2, x^3), with a loss module and a hand-written update (the nn lesson).
import math

import torch

x = torch.linspace(-math.pi, math.pi, 2000)
y = torch.sin(x)
powers = torch.tensor([1, 2, 3])
features = x.unsqueeze(-1).pow(powers)
model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1))
loss_fn = torch.nn.MSELoss(reduction="sum")
lr = 1e-6
losses = []
for step in range(500):
    loss = loss_fn(model(features), y)
    losses.append(loss.item())
    model.zero_grad()
    loss.backward()
    with torch.no_grad():
        for param in model.parameters():
            param -= lr * param.grad
layer = model[0]
print(f"y = {layer.bias.item():.4f} + {layer.weight[:, 0].item():.4f} x + {layer.weight[:, 1].item():.4f} x^2 + "
      f"{layer.weight[:, 2].item():.4f} x^3")
