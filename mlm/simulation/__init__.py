"""Simulation and planning: new outcomes from a fit and teaching data (``simulate``), power by
simulation (``power``), and the seeded, parallel replicate runner both use (``replicates``)."""
