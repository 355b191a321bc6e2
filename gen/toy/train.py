"""Training and evaluation for the supervised toy tasks on the squares set.

Tasks (Liu et al. 2018, section 3; docs/results/toy.md):
- classify: centre (x, y) -> softmax over every pixel; right when the argmax is the centre.
- render:   centre (x, y) -> the 9 x 9 square, per-pixel sigmoid; scored by IOU.
- regress:  one-hot map -> centre (x, y); scored by the mean distance in pixels.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import nn
from torch.nn import functional as F

from gen.data import NotSoClevr, make_squares
from gen.errors import InputError
from gen.toy.models import TASKS, CoordConvRenderer, build_model, count_parameters, to_pixels, to_unit

SPLITS = ("uniform", "quadrant")
METRICS = {"classify": "accuracy", "render": "iou", "regress": "error_px"}

# Per (task, coordconv): (epochs, learning rate). The CoordConv rows sit a little above the
# smallest epoch counts that solved both splits on one CPU core; the conv baselines get more wall
# time than the CoordConv model of their task, at learning rates inside the authors' sweeps
# (docs/models.md).
DEFAULTS: dict[tuple[str, bool], tuple[int, float]] = {
    ("classify", True): (5, 1e-2),
    ("classify", False): (100, 1e-2),
    ("render", True): (5, 1e-2),
    ("render", False): (100, 1e-2),
    ("regress", True): (10, 1e-2),
    ("regress", False): (50, 1e-3),
}


@dataclass
class ToyConfig:
    """One toy run. `epochs` and `lr` left as None take the tuned default for the task and
    model (DEFAULTS)."""

    task: str = "classify"
    split: str = "uniform"
    coordconv: bool = False
    epochs: int | None = None
    lr: float | None = None
    batch_size: int = 32
    seed: int = 0
    device: str = "cpu"

    def resolved(self) -> ToyConfig:
        """Check the fields and fill in the defaults."""
        if self.task not in TASKS:
            raise InputError(f"unknown toy task {self.task!r}; choose from {', '.join(TASKS)}")
        if self.split not in SPLITS:
            raise InputError(f"unknown split {self.split!r}; choose from {', '.join(SPLITS)}")
        epochs, lr = DEFAULTS[(self.task, self.coordconv)]
        config = replace(self, epochs=epochs if self.epochs is None else self.epochs,
                         lr=lr if self.lr is None else self.lr)
        if config.epochs < 1:
            raise InputError(f"epochs must be at least 1, got {config.epochs}")
        if not config.lr > 0:
            raise InputError(f"learning rate must be positive, got {config.lr}")
        if config.batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {config.batch_size}")
        return config


@dataclass
class ToyResult:
    """What a run measured: metrics on the train and test parts, size and wall time; the
    trained network rides along for further use (it is not part of `to_dict`)."""

    config: ToyConfig
    split: str
    model: str
    params: int
    seconds: float
    train: float
    test: float | None
    losses: list[float] = field(default_factory=list)
    network: nn.Module | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """Flat JSON-ready record: config fields, then train_<metric> / test_<metric>."""
        metric = METRICS[self.config.task]
        record = asdict(self.config)
        record["split"] = self.split
        record.update(model=self.model, params=self.params, seconds=round(self.seconds, 3),
                      losses=self.losses)
        record[f"train_{metric}"] = self.train
        record[f"test_{metric}"] = self.test
        return record


def check_squares(data: NotSoClevr) -> int:
    """Validate a squares set for the toy tasks and return its canvas size."""
    if "onehot" not in data.labels or "test" not in data.labels:
        raise InputError(f"the toy tasks need a squares set with 'onehot' and 'test' labels, "
                         f"got labels {sorted(data.labels)}")
    if data.images.dim() != 4 or data.images.shape[1] != 1 or data.images.shape[2] != data.images.shape[3]:
        raise InputError(f"the toy tasks need 1-channel square images, got {tuple(data.images.shape)}")
    if data.centres.dim() != 2 or data.centres.shape[1] != 2:
        raise InputError(f"the toy tasks need one (x, y) centre per image, got {tuple(data.centres.shape)}")
    if not (~data.labels["test"].bool()).any():
        raise InputError("the squares set has no training rows")
    return int(data.images.shape[-1])


def task_tensors(task: str, data: NotSoClevr, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) of a task, on the device, in the form the models and losses take."""
    canvas = data.images.shape[-1]
    centres = data.centres.long().to(device)
    if task == "classify":
        return centres, centre_index(centres, canvas)
    if task == "render":
        return centres, (data.images > 0).float().to(device)
    return data.labels["onehot"].float().unsqueeze(1).to(device), to_unit(centres, canvas)


def centre_index(centres: torch.Tensor, canvas: int) -> torch.Tensor:
    """Flat pixel index of each (x, y) centre: the class of the 4096-way softmax."""
    return centres[:, 1] * canvas + centres[:, 0]


def training_loss(task: str, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy (classify), per-pixel sigmoid cross-entropy (render) or squared
    error in unit coordinates (regress); the CoordConv renderer adds its centre loss."""
    if isinstance(model, CoordConvRenderer):
        square_logits, centre_logits = model.forward_with_centre(inputs)
        return (F.binary_cross_entropy_with_logits(square_logits, targets)
                + F.cross_entropy(centre_logits.flatten(1), centre_index(inputs, model.locate.canvas)))
    outputs = model(inputs)
    if task == "classify":
        return F.cross_entropy(outputs.flatten(1), targets)
    if task == "render":
        return F.binary_cross_entropy_with_logits(outputs, targets)
    return F.mse_loss(outputs, targets)


def classify_argmax(logits: torch.Tensor, canvas: int) -> torch.Tensor:
    """Per image: the (x, y) pixel where the logits over the canvas peak."""
    index = logits.flatten(1).argmax(dim=1)
    return torch.stack([index % canvas, index // canvas], dim=1)


def classify_correct(logits: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Per image: is the argmax of the logits over the canvas the centre pixel?"""
    return (classify_argmax(logits, logits.shape[-1]) == centres).all(dim=1)


def render_iou(logits: torch.Tensor, squares: torch.Tensor) -> torch.Tensor:
    """Per image: intersection over union of (sigmoid > 0.5) and the true square."""
    painted = logits.flatten(1) > 0
    truth = squares.flatten(1) > 0
    return (painted & truth).sum(1).float() / (painted | truth).sum(1).float()


def regress_error_px(predicted: torch.Tensor, centres: torch.Tensor, canvas: int) -> torch.Tensor:
    """Per image: distance in pixels from the predicted (unit-scale) centre to the true one."""
    return (to_pixels(predicted, canvas) - centres.float()).norm(dim=1)


@torch.no_grad()
def evaluate(model: nn.Module, task: str, data: NotSoClevr, batch_size: int = 256,
             device: str = "cpu") -> float | None:
    """The task's metric averaged over a set (None for an empty set): accuracy, IOU or
    pixel error."""
    if len(data) == 0:
        return None
    model.eval()
    inputs, targets = task_tensors(task, data, device)
    centres = data.centres.long().to(device)
    scores = []
    for start in range(0, len(data), batch_size):
        rows = slice(start, start + batch_size)
        outputs = model(inputs[rows])
        if task == "classify":
            scores.append(classify_correct(outputs, centres[rows]).float())
        elif task == "render":
            scores.append(render_iou(outputs, targets[rows]))
        else:
            scores.append(regress_error_px(outputs, centres[rows], data.images.shape[-1]))
    return torch.cat(scores).mean().item()


def train_toy(config: ToyConfig, data: NotSoClevr | None = None,
              log: Callable[[str], None] | None = None) -> ToyResult:
    """Train the task's model on the train part of `data` (default: all 3136 squares with
    the config's split; a given set reports its split as "custom") and score it on both
    parts. Same config and data, same result."""
    config = config.resolved()
    split = config.split if data is None else "custom"
    if data is None:
        data = make_squares(config.split)
    canvas = check_squares(data)
    train_part, test_part = data.part("train"), data.part("test")

    torch.manual_seed(config.seed)
    model = build_model(config.task, config.coordconv, canvas).to(config.device)
    inputs, targets = task_tensors(config.task, train_part, config.device)
    steps_per_epoch = math.ceil(len(train_part) / config.batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    # Cosine decay to zero: the last epochs settle the argmax / threshold exactly.
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.epochs * steps_per_epoch)
    shuffle = torch.Generator().manual_seed(config.seed)

    losses = []
    start = time.perf_counter()
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(train_part), generator=shuffle).to(config.device)
        total = 0.0
        for rows in order.split(config.batch_size):
            loss = training_loss(config.task, model, inputs[rows], targets[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(rows)
        losses.append(total / len(train_part))
        if log is not None:
            log(f"epoch {epoch + 1}/{config.epochs}  loss {losses[-1]:.5f}  "
                f"{time.perf_counter() - start:.1f}s")
    train_score = evaluate(model, config.task, train_part, device=config.device)
    test_score = evaluate(model, config.task, test_part, device=config.device)
    seconds = time.perf_counter() - start
    return ToyResult(config, split, type(model).__name__, count_parameters(model), seconds,
                     train_score, test_score, losses, model)
