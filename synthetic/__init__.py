"""Seeded synthetic images built from real MNIST digits, shared by the tests and the benchmarks:
camera-like frames and videos (frames.py) and photo-like pages of paper (pages.py). Floors for
tests and speed benchmarks, never a target to tune reading on: that is what real photos are for."""
