"""The child process of :func:`fsdl_lib.tracking.smoke_test`: load a skops model, predict once.

    python -m fsdl_lib._smoke MODEL.skops TRUSTED_TYPE...

Exits 0 after printing what it predicted (JSON); 1 with the reason on stderr. A model that crashes
the interpreter (a native fault) or hangs takes only this process with it.
"""

from __future__ import annotations

import json
import resource
import sys
import warnings

from fsdl_lib.lean_imports import refuse_training_imports

MEMORY_LIMIT = 4 * 1024**3
"""Address space a model may take while it is tried (a hostile one asking for more gets MemoryError)."""
ROWS = 8


def main(argv: list[str]) -> int:
    path, *trusted = argv
    refuse_training_imports()  # scikit-learn would import torch and pyarrow: seconds and hundreds of MiB
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    try:
        import numpy as np
        import skops.io

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = skops.io.load(path, trusted=trusted)
            width = int(model.n_features_in_)
            rows = np.random.default_rng(0).standard_normal((ROWS, width)).astype(np.float32)
            predicted = np.asarray(model.predict(rows))
            scores = model.predict_proba(rows) if hasattr(model, "predict_proba") else None
        if predicted.shape[0] != ROWS:
            raise ValueError(f"it predicted {predicted.shape[0]} values for {ROWS} rows")
        if scores is not None and (np.shape(scores)[0] != ROWS or not np.all(np.isfinite(scores))):
            raise ValueError("its class probabilities are not finite numbers, one row per input")
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}"[:500], file=sys.stderr)
        return 1
    print(json.dumps({"features": width, "predicted": [str(p) for p in predicted[:3]]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
