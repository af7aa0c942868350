"""ES training: the run's settings, its directory and checkpoints, the loop, the learning curves."""

from agents.training.config import TrainConfig, build_policy
from agents.training.loop import TrainResult, train
from agents.training.rundir import RunDirError, read_metrics

__all__ = ["RunDirError", "TrainConfig", "TrainResult", "build_policy", "read_metrics", "train"]
