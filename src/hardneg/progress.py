"""Progress callback types shared by the stages (the CLI turns them into progress bars)."""

from __future__ import annotations

from collections.abc import Callable

# (stage or step name, done, total): mining steps, cascade stages, evaluation phases.
StageProgress = Callable[[str, int, int], None]
# (items done so far): streaming readers and writers, relabelling, imports.
CountProgress = Callable[[int], None]
