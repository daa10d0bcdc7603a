"""``inpaint-kit train-controlnet``: one row of :data:`inpaint_kit.commands.training.TRAIN_COMMANDS`."""

from .training import command

HELP, add_arguments, run = command("train-controlnet")
