"""Data parallel: the same Trainer on several processes, started by ``torchrun``.

``torchrun --nproc_per_node=N script.py`` starts ``N`` copies of a script and tells each, in
environment variables, who it is: ``RANK`` (0 … N−1 over all machines), ``LOCAL_RANK`` (its
number on this machine, which picks its GPU) and ``WORLD_SIZE`` (N times the machines). The
:class:`~ldl.train.trainer.Trainer` reads them (:func:`detect`) and then

- joins the process group (:func:`join_process_group`): gloo on the CPU, NCCL on GPUs;
- wraps its model in ``DistributedDataParallel``, which averages the gradients of all
  processes during ``backward()``, so every process takes the same step;
- shards every loader (:func:`shard_loader`): each process sees its own 1/N of the photos
  in every epoch, and a new shuffle each epoch (:func:`set_epoch`);
- adds the epoch's metrics up over the processes (:func:`all_reduce_meters`), so all of
  them log, stop early and choose the same;
- lets only rank 0 print, draw progress bars, and write checkpoints and TensorBoard logs.

Each process's batch is its own ``batch_size``: N processes at batch 16 take the steps of one
process at batch 16·N. That is why the learning rate has to follow (lesson 7, the linear
scaling rule).

Without those environment variables (a notebook, ``python script.py``) nothing here changes
anything: one process, world size 1.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Sampler

from ldl.train.metrics import MeanMeter


@dataclass(frozen=True)
class DistributedContext:
    """Who this process is among the processes of one training run."""

    rank: int = 0  # 0 … world_size − 1, over all machines
    world_size: int = 1
    local_rank: int = 0  # the number of this process on its machine: which GPU it takes

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that prints and writes files."""
        return self.rank == 0


def detect() -> DistributedContext:
    """The context ``torchrun`` set in the environment, or a single process without it."""
    try:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as error:
        raise ValueError(f"RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers (torchrun sets them): {error}") from None
    if not 0 <= rank < world_size:
        raise ValueError(f"RANK={rank} is outside 0 … WORLD_SIZE−1 = {world_size - 1}: start the script with torchrun.")
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank)


def join_process_group(context: DistributedContext, device: torch.device) -> None:
    """Join the run's process group, once per process: NCCL between GPUs, gloo on the CPU.

    ``torchrun`` has set ``MASTER_ADDR`` and ``MASTER_PORT`` (rank 0's address, or the
    rendezvous endpoint with ``--nnodes``), so every process finds the others there.
    """
    if not context.is_distributed or dist.is_initialized():
        return
    if "MASTER_ADDR" not in os.environ:
        raise RuntimeError("WORLD_SIZE > 1 but MASTER_ADDR is not set: start the script with torchrun "
                           "(torchrun --nproc_per_node=2 script.py), which sets it.")
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=context.rank, world_size=context.world_size)


def process_device(context: DistributedContext) -> torch.device:
    """This process's device under ``device="auto"``: GPU number ``LOCAL_RANK`` if there are GPUs."""
    if torch.cuda.is_available():
        return torch.device("cuda", context.local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def shared_seed(context: DistributedContext) -> int:
    """One shuffling seed for all processes: rank 0's, sent to the others.

    Every process must shuffle the photos the same way before taking its share, or some
    photos would be seen twice in an epoch and others never.
    """
    seed = torch.initial_seed() % 2**31
    if not context.is_distributed:
        return seed
    box = [seed]
    dist.broadcast_object_list(box, src=0)
    return int(box[0])


class EvenShardSampler(Sampler[int]):
    """Every ``world_size``-th index from ``rank``, in order, without padding: for measuring.

    ``DistributedSampler`` repeats a few samples so that every process gets as many; that
    is needed in training (every process must take the same number of steps) but would
    count those photos twice in a validation score. Measuring needs no step in step, so
    here each photo is measured exactly once, by one process.
    """

    def __init__(self, dataset_size: int, context: DistributedContext) -> None:
        self.indices = list(range(context.rank, dataset_size, context.world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def shard_loader(loader: Iterable, context: DistributedContext, *, training: bool, seed: int) -> Iterable:
    """The loader this process should read: its own share of the photos.

    Args:
        loader: a ``DataLoader`` (rebuilt with a distributed sampler) or a loader with a
            ``shard(rank, world_size, seed=, pad=)`` method, e.g. :class:`ldl.data.DeviceLoader`. A DataLoader that already
            has a ``DistributedSampler`` is kept as it is.
        training: shard for training (the shuffle kept, padded to equal shares, a new order
            every epoch) or for measuring (every photo once, no padding).
        seed: the shuffling seed, the same in every process (:func:`shared_seed`).
    """
    if not context.is_distributed:
        return loader
    if hasattr(loader, "shard"):  # a loader that shards itself, e.g. ldl.data.DeviceLoader
        return loader.shard(context.rank, context.world_size, seed=seed, pad=training)
    if not isinstance(loader, DataLoader):
        raise TypeError(f"Under torchrun the Trainer shards a DataLoader, or a loader with a shard() method such as "
                        f"ldl.data.DeviceLoader; got {type(loader).__name__}. Give each process its own share yourself "
                        "(e.g. a DataLoader with a DistributedSampler).")
    if isinstance(loader.sampler, DistributedSampler):
        return loader
    if loader.batch_size is None:
        raise ValueError("This DataLoader was built with a batch_sampler; under torchrun build it with batch_size= "
                         "and shuffle= so that the Trainer can shard it, or give it a DistributedSampler yourself.")
    if training:
        sampler: Sampler[int] = DistributedSampler(
            loader.dataset, num_replicas=context.world_size, rank=context.rank,
            shuffle=isinstance(loader.sampler, RandomSampler), seed=seed, drop_last=loader.drop_last)
    else:
        sampler = EvenShardSampler(len(loader.dataset), context)
    return DataLoader(
        loader.dataset, batch_size=loader.batch_size, sampler=sampler, num_workers=loader.num_workers,
        collate_fn=loader.collate_fn, pin_memory=loader.pin_memory, drop_last=loader.drop_last,
        worker_init_fn=loader.worker_init_fn, persistent_workers=loader.persistent_workers)


def set_epoch(loader: Iterable, epoch: int) -> None:
    """Tell a distributed sampler (or a sharded DeviceLoader) which epoch starts: a new shuffle each epoch.

    Without it a ``DistributedSampler`` repeats the first epoch's order for ever.
    """
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    elif hasattr(getattr(loader, "sampler", None), "set_epoch"):
        loader.sampler.set_epoch(epoch)


def all_reduce_meters(meters: Iterable[MeanMeter], device: torch.device) -> None:
    """Add every meter's total and count up over all processes, in place (one message for all).

    Afterwards each process's ``compute()`` gives the mean over all the photos of the epoch,
    weighted by how many each process saw.
    """
    meters = list(meters)
    sums = torch.zeros(2 * len(meters), dtype=torch.float64, device=device)
    for i, meter in enumerate(meters):
        if meter.total is not None:
            sums[2 * i] = meter.total.double()
        sums[2 * i + 1] = meter.count
    dist.all_reduce(sums, op=dist.ReduceOp.SUM)
    for i, meter in enumerate(meters):
        meter.total = sums[2 * i].float()
        meter.count = int(sums[2 * i + 1].item())


def rank0_decides(context: DistributedContext, decision: bool) -> bool:
    """Rank 0's ``decision`` in every process, so that all take the same branch.

    A choice made from something that differs between processes (each one's clock, say)
    must be the same everywhere: a process that stops while the others train on would leave
    them waiting for it for ever in the next gradient average.
    """
    if not context.is_distributed or not dist.is_initialized():
        return decision
    box = [bool(decision)]
    dist.broadcast_object_list(box, src=0)
    return bool(box[0])


def wait_for_all(context: DistributedContext) -> None:
    """Every process waits here until all have arrived (e.g. until rank 0 has written a checkpoint)."""
    if context.is_distributed and dist.is_initialized():
        dist.barrier()
