"""tltutor: the helper package of the tltutor transfer-learning course.

One module per idea: ``data`` (datasets and domain shifts), ``models``
(backbones, heads, freezing, BatchNorm diagnostics, source models),
``train`` (fitting, schedules, feature caches), ``gpu`` (devices),
``exercises`` (self-checking widgets) and ``cli`` (``python -m tltutor``).

Modules are imported on use so that ``import tltutor`` stays fast:

>>> import tltutor
>>> tltutor.__version__
'0.1.0'
"""

__version__ = "0.1.0"
