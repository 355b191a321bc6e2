"""Conventions of the metrics, in one place, with their numbers.

The numbers live in this module, which imports nothing heavy, so that report.py can label
its rows with them without pulling in scipy.

- JS and KL divergences are in bits. JS needs no smoothing (0 = identical, 1 = disjoint).
  KL is KL(reference || generated), the mode-dropping direction, with add-one (Laplace)
  smoothing of the generated counts over the reference support. Both are also given on a
  coarse grid of 8 x 8 pixel blocks.
- Wasserstein-1 is exact, with the L1 (Manhattan) ground distance in pixels: a min-cost flow
  on the 4-neighbour pixel grid, solved as a linear program (scipy HiGHS).
- Quadrants split at 32 like the quadrant split: right is x > 32, bottom is y > 32, so the
  held-out quadrant of `gen data make squares --split quadrant` is bottom-right.
- coverage_ratio divides position coverage by the coverage i.i.d. real samples reach with
  the same number of samples (exact: the mean over centres of 1 - (1 - p)^n). Invalid
  samples count in n, so a generator is penalised for them. A file holding every square
  once is not i.i.d. and scores about 1 / (1 - 1/e) = 1.58.
- Density and coverage (Naeem et al. 2020, k = 5) compare the positions with a seeded real
  sample of the same count; both get uniform jitter in [-0.5, 0.5) so that grid ties do not
  zero the k-NN radii, and invalid samples are fakes that lie near no real point.
- Values that need a valid sample are NaN when there is none; save_metrics writes them as null.
"""

COARSE = 8
KNN_K = 5
KL_PSEUDOCOUNT = 1.0
QUADRANTS = ("top_left", "top_right", "bottom_left", "bottom_right")
