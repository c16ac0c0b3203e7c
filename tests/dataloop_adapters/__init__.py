"""Adapters written the way the public Dataloop adapters are: each subclasses ``dl.BaseModelAdapter``
directly and imports only dtlpy, numpy, PIL, torch and scikit-learn (never ``runner``), so the same
file deploys to the Dataloop platform. The tests run them unedited through ``runner.app.run``."""
