"""ES training: the run's settings, its directory and checkpoints, the loop, the learning curves."""

from agents.training.config import TrainConfig, build_policy, train_config
from agents.training.loop import TrainingError, TrainResult, train
from agents.training.rundir import RunDirError, read_metrics

__all__ = ["RunDirError", "TrainConfig", "TrainResult", "TrainingError", "build_policy", "read_metrics", "train", "train_config"]
