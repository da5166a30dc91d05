"""Tasks: what a stack of genomes is scored on."""

from evo.tasks.base import Task

__all__ = ["Task"]
