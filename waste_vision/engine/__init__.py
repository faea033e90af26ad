"""The engine: a frame's way from a source through the cascade to the sinks.

sources -> pipeline (scene, items, regions, reuse, tally, explain) -> annotators -> sinks
(recorder, JSONL log, the window's bridge). It never imports the commands, the window or
training, and never TensorFlow.
"""
