"""Data files bundled with mlm (installed as the ``mlm.datasets`` package).

Use :func:`mlm.load_dataset` to read them; ``manifest.json`` describes each file.
"""
