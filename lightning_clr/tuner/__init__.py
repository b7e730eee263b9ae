"""The LR range test and the "auto" bounds it suggests."""

from lightning_clr.tuner.range_test import LRRangeTest, RangeTestError, RangeTestResult, lr_range_test

__all__ = ["LRRangeTest", "RangeTestError", "RangeTestResult", "lr_range_test"]
