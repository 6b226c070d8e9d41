"""A Flask service of a user's own (fargo does not depend on Flask): it answers with its
ECS task id, read from the task metadata endpoint, as the reference backend does."""

import json
import os
import sys
import urllib.request
from importlib.metadata import version

from flask import Flask

app = Flask(__name__)


def task_id() -> str:
    url = os.environ["ECS_CONTAINER_METADATA_URI_V4"] + "/task"
    with urllib.request.urlopen(url, timeout=2) as answer:
        return json.load(answer)["TaskARN"].rsplit("/", 1)[-1]


@app.get("/")
def health() -> str:
    return "ok"


@app.get("/flask/whoami")
def whoami() -> dict[str, str]:
    with open("greeting.txt") as greeting:  # relative to WORKDIR
        text = greeting.read().strip()
    return {
        "task": task_id(),
        "cwd": os.getcwd(),
        "greeting": text,
        "python": "{}.{}".format(*sys.version_info[:2]),
        "flask": version("flask"),
        "executable": sys.executable,
    }


if __name__ == "__main__":
    # As in a container: every address, the port the platform gives.
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "8000")))
