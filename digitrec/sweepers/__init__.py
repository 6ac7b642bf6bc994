"""Hydra sweepers that live in the project (Hydra finds them through hydra_plugins/ below).

optuna_sweeper.py is `hydra/sweeper=optuna`: Optuna's ask-and-tell under Hydra's sweep interface.
"""
