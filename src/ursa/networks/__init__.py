"""Plain torch modules and their dataclass configs: no epochs, no scaling, no numpy."""

from .recurrent import (
    CELLS,
    RecurrentConfig,
    RecurrentDecoder,
    RecurrentEncoder,
    RecurrentStack,
    SequenceAutoencoderNet,
    fold_input_scaling,
    fold_output_scaling,
    last_valid,
    make_rnn,
    reverse_padded,
    step_mask,
)
from .losses import masked_mse, step_errors

__all__ = [
    "CELLS",
    "RecurrentConfig",
    "RecurrentDecoder",
    "RecurrentEncoder",
    "RecurrentStack",
    "SequenceAutoencoderNet",
    "fold_input_scaling",
    "fold_output_scaling",
    "last_valid",
    "make_rnn",
    "masked_mse",
    "reverse_padded",
    "step_errors",
    "step_mask",
]
