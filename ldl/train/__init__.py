"""Training: the Trainer, its callbacks, metrics, checkpoints and History.

:mod:`ldl.train.tensorboard` (``TensorBoardLogger``) is imported on its own, since it loads
TensorBoard, which a fit without it does not need.

    from ldl.train import Trainer, EarlyStopping
    history = Trainer(model, callbacks=[EarlyStopping()]).fit(train_loader, val_loader, epochs=10)
"""

from ldl.train.callbacks import Callback, CancelFit, EarlyStopping, ModelCheckpoint
from ldl.train.checkpoint import CheckpointError, load_checkpoint, load_weights, restore_rng_states, save_checkpoint, save_weights
from ldl.train.history import History
from ldl.train.metrics import MeanMeter, topk_accuracy, topk_correct
from ldl.train.trainer import Trainer
from ldl.train.callbacks import BatchNormStats
from ldl.train.grid import Comparison, RunConfig, run_grid
from ldl.train.held_out import HeldOutScores
from ldl.train.regularizers import PenalizedLoss, decay_param_groups, penalized_parameters, smooth_labels
from ldl.train.callbacks import GradientStats, NonFiniteGuard
# lesson 4: transfer learning
from ldl.train.callbacks import FreezeBatchNorm, TimeBudget, save_trainer_checkpoint
from ldl.train.lr_finder import LRFinder, LRFinderResult, lr_find
from ldl.train.schedules import LRRecorder, one_cycle, preview_schedule, warm_restarts, warmup_cosine

__all__ = [
    "Callback",
    "CancelFit",
    "CheckpointError",
    "EarlyStopping",
    "History",
    "MeanMeter",
    "ModelCheckpoint",
    "Trainer",
    "load_checkpoint",
    "load_weights",
    "restore_rng_states",
    "save_checkpoint",
    "save_weights",
    "topk_accuracy",
    "topk_correct",
    # lesson 2: regularisation
    "BatchNormStats",
    "Comparison",
    "HeldOutScores",
    "PenalizedLoss",
    "RunConfig",
    "decay_param_groups",
    "penalized_parameters",
    "run_grid",
    "smooth_labels",
    # lesson 3: initialisation and gradients
    "GradientStats",
    "NonFiniteGuard",
    # lesson 4: transfer learning, learning-rate finder and schedules
    "FreezeBatchNorm",
    "TimeBudget",
    "save_trainer_checkpoint",
    "LRFinder",
    "LRFinderResult",
    "LRRecorder",
    "lr_find",
    "one_cycle",
    "preview_schedule",
    "warm_restarts",
    "warmup_cosine",
    # imported on its own: from ldl.train.tensorboard import TensorBoardLogger
    "tensorboard",
]
