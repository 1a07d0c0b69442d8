import math

import numpy as np

from factrecall.core import fits


def test_power_law_recovers_slope_and_prefactor():
    x = np.geomspace(10, 1000, 8)
    fit = fits.power_law(x, 0.5 * x**0.9)
    assert math.isclose(fit.slope, 0.9, rel_tol=1e-9)
    assert math.isclose(fit.prefactor, 0.5, rel_tol=1e-9)
    assert fit.slope_stderr < 1e-9


def test_guide_constant_and_deviation():
    assert math.isclose(fits.guide_constant([13.0, 26.0], [10.0, 20.0]), 1.3)
    assert math.isclose(fits.deviation(1.1, 1.0), 0.1)
    assert math.isnan(fits.power_law([1.0], [1.0]).slope)
