"""The ASGI application for uvicorn workers, built from the environment."""

from .app import create_app
from .config import load_settings

app = create_app(load_settings())
