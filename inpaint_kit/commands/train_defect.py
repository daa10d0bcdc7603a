"""``inpaint-kit train-defect``: one row of :data:`inpaint_kit.commands.training.TRAIN_COMMANDS`."""

from .training import command

HELP, add_arguments, run = command("train-defect")
