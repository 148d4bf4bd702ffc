"""Drive a running platform from outside, as its users and operators do.

``clients``: Airflow's REST API, MLflow's REST API, the web app's JSON API, env files and logins.
``flywheel``: one turn of the data flywheel, step by step, with timings.
``launcher``: the platform as local processes in a workspace of its own (``make up`` and
``make up-distributed``'s script). ``compose``: a copy of the repository run with docker compose.

The tests, ``make demo`` and the benchmarks use this package; the platform itself never does.
"""
