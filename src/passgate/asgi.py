"""The ASGI application for uvicorn workers, built from the environment."""

import gc

from .app import create_app
from .config import load_settings

app = create_app(load_settings())

# What the worker holds from here on (modules, classes, the app, its tables and statements: about 160,000
# objects) is kept for good: the collector stops walking it. A full collection over it took 150 ms on the
# benchmark's machine, a pause for every request in flight in this worker (docs/benchmarks.md).
gc.collect()
gc.freeze()
