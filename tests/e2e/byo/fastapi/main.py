"""A FastAPI service of a user's own (fargo does not depend on FastAPI): it answers with
its ECS task id, read from the task metadata endpoint."""

import json
import os
import urllib.request

from fastapi import FastAPI

app = FastAPI()


def task_id() -> str:
    url = os.environ["ECS_CONTAINER_METADATA_URI_V4"] + "/task"
    with urllib.request.urlopen(url, timeout=2) as answer:
        return json.load(answer)["TaskARN"].rsplit("/", 1)[-1]


@app.get("/")
def health() -> dict[str, bool]:
    return {"ok": True}


@app.get("/fastapi/whoami")
def whoami() -> dict[str, str]:
    return {
        "task": task_id(),
        "cwd": os.getcwd(),
        "greeting": os.environ["GREETING"],
        "app_home": os.environ["APP_HOME"],
        "data": open(os.path.join(os.environ["APP_HOME"], "data.txt")).read().strip(),
    }
