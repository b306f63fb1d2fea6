"""The analysis phase: per-task analyses of the trained models (``analyse_task.py``), the study's
analyses from the tidy table of runs (``stats.py``, ``games.py``, ``similarity.py``), and the
tables and figures (``analyse.py``, ``tables.py``, ``figures.py``)."""

# the tables `vecomp analyse-task` writes in each task's folder and `vecomp analyse` reads
TASK_TABLES = ("attention", "ensemble", "similarity", "effective_rank")
