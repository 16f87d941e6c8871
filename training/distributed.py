"""The few collective operations the recipe needs, over `accelerate`'s process state.

Under `accelerate launch` (or `torchrun`) every process runs the whole recipe on its own shard of each
step's examples; started plainly, the same code runs as a single process and the collectives are no-ops.
The model is deliberately not wrapped in DistributedDataParallel: the loss reads hidden states at the
assistant positions only (see `training.recipe.token_loss_sum`), which bypasses the wrapped module's
`forward` that DDP hooks into. Summing the LoRA gradients by hand is a few lines, and it lets the loss be
normalised by the assistant-token count over *all* processes, so N processes take exactly the step one
process would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Processes:
    """This process's place in the run, and the collectives over all processes."""

    state: Any
    """`accelerate.PartialState`: it reads the launcher's environment and sets up the process group."""

    @property
    def rank(self) -> int:
        return int(self.state.process_index)

    @property
    def world(self) -> int:
        return int(self.state.num_processes)

    @property
    def is_main(self) -> bool:
        """Only the main process writes checkpoints, the adapter, the log and the registry entry."""
        return bool(self.state.is_main_process)

    @property
    def device(self) -> torch.device:
        return self.state.device

    def barrier(self) -> None:
        self.state.wait_for_everyone()

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The elementwise sum of `tensor` over all processes (the tensor itself when alone)."""
        if self.world == 1:
            return tensor
        from accelerate.utils import reduce

        # NCCL reduces only tensors on the GPU; gloo takes either. Hand back on the caller's device.
        return reduce(tensor.to(self.device), reduction="sum").to(tensor.device)

    def sum_gradients(self, params: Sequence[torch.nn.Parameter]) -> None:
        """Replace each parameter's gradient by its sum over all processes, in one flat all-reduce.

        A process whose shard of the step was empty has no gradients; it contributes zeros.
        """
        if self.world == 1:
            return
        import torch

        for param in params:
            if param.grad is None:
                param.grad = torch.zeros_like(param)
        grads = [param.grad for param in params if param.grad is not None]  # all of them, after the loop
        flat = self.sum(torch.cat([grad.flatten() for grad in grads]))
        for grad, chunk in zip(grads, flat.split([grad.numel() for grad in grads]), strict=True):
            grad.copy_(chunk.view_as(grad))


def current_processes() -> Processes:
    """The processes of this run, as the launcher (or its absence) set them up."""
    from accelerate import PartialState

    return Processes(PartialState())
