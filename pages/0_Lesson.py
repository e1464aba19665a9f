"""Guided lesson: DropBlock (Ghiasi, Lin & Le, NeurIPS 2018) in eight steps, predict then reveal.

The steps, their parameters and their drawing live in ui/lesson.py; the step is in the URL (step=1..8).
"""

from __future__ import annotations

from ui import frame, lesson

frame.page(lesson.draw)
