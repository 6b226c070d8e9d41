"""``python -m frontend``: serve the demo page."""

from frontend.app import DEFAULT_PORT, build_app
from service_kit.server import serve

if __name__ == "__main__":
    serve(build_app, default_port=DEFAULT_PORT)
