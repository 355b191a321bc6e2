"""Datasets: generated Not-so-Clevr sets and natural images (LSUN lmdb, image folders)."""

from gen.data.notsoclevr import NotSoClevr, make_shapes, make_squares

__all__ = ["NotSoClevr", "make_shapes", "make_squares"]
