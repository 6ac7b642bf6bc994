"""digitrec's sweepers where Hydra looks for plugins: the `hydra_plugins` namespace package.

Hydra instantiates only plugin classes it found by scanning hydra_plugins.*, so this package is
installed as `hydra_plugins.digitrec_sweepers` (pyproject.toml maps the namespace package
hydra_plugins to digitrec/sweepers/hydra_plugins/, in editable installs too). Importing it
registers the configs hydra/sweeper=optuna and hydra/sweeper/sampler=tpe|random|grid.
"""

from digitrec.sweepers import optuna_sweeper as _optuna


class OptunaSweeper(_optuna.OptunaSweeper):
    """digitrec.sweepers.optuna_sweeper.OptunaSweeper, under the name Hydra accepts."""


_optuna.register_configs()
