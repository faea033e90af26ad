"""The labels every layer shares, defined once: the cascade's abstention and the empty verdict.

Kept apart from ``cascade`` so the records, the counting rules and the overlay can name them
without importing the model code.
"""

from __future__ import annotations

UNCERTAIN = "uncertain"  # the cascade's label when no stage is sure enough
EMPTY = "empty"  # the verdict when item finding sees nothing on the table
