"""Tests of :mod:`lightning_clr.schedules`, one file per module of the package.

A package (this ``__init__``), so that its file names may repeat those of other test folders (e.g. a
``tests/callbacks/test_cyclic.py`` beside ``tests/schedules/test_cyclic.py``).
"""
