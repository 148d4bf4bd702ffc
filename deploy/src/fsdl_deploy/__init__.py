"""How the fsdl platform is deployed, in one place: each service's environment and command per run
mode, the secrets, and the files generated from them (``make generate``).

The domain library (``fsdl_lib``) knows nothing of this; the web app and the DAGs never import it.
``fsdl_deploy.secrets`` uses the standard library only, so ``make secrets`` runs before any venv exists.
"""
