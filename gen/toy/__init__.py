"""The paper's supervised toy tasks (classify, render, regress): CoordConv vs conv baselines."""

from gen.toy.models import TASKS, build_model, count_parameters
from gen.toy.train import ToyConfig, ToyResult, evaluate, train_toy

__all__ = ["TASKS", "ToyConfig", "ToyResult", "build_model", "count_parameters", "evaluate", "train_toy"]
