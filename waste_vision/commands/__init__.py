"""The command line: the parser (``cli``) and one module per command's body.

Top layer, beside the window (``waste_vision.app``): commands use the engine and the model,
never the other way round.
"""
