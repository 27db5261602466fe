"""Alliance Points Exchange core: settings, toolchain, chain, artifacts and errors.

The core imports neither app (`gateway`, `settlement`); they build on it.
"""
