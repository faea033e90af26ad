"""waste-vision: tells organic from recyclable, and the recyclable's material, live."""

__version__ = "0.4.0"
