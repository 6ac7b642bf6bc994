"""The code MLflow runs to load a digitrec reader model (MLflow's "models from code": the model
is this file plus its checkpoints, never a pickled object)."""

from mlflow.models import set_model

from digitrec.registry.pyfunc import ReaderModel

set_model(ReaderModel())
