"""Guided lesson: DropBlock (Ghiasi, Lin & Le, NeurIPS 2018) in eight steps, predict then reveal.

The steps and their parameters live in ui/lesson_steps.py, their drawing in ui/lesson.py; the step is
in the URL (step=1..8).
"""

from __future__ import annotations

from ui import frame, lesson

frame.page(lesson.draw)
