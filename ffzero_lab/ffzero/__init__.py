"""FFzero's math as pure functions and small estimators: encoding, prototypes, goodness, losses,
voting, objectives, perturbation and gradient estimates, step calibration, optimisers, the four methods
(FF+DD, FF+AD, BP+DD, BP+AD). Takes plain arguments (arrays,
:class:`~ffzero_lab.ffzero.settings.EstimatorSettings`), never a pydantic model. Imports only
:mod:`ffzero_lab.core`.
"""
