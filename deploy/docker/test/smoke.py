"""The whole platform from deploy/docker/compose.yaml under podman-compose, driven through the
gateway container as a user would: register, log in, a project with a board, a task with a job
that the execution service runs (watched until it finishes), `grpcurl list` on the gRPC port;
then one service container is killed, comes back by its restart policy, and nothing is lost.

Runs the images images.sh built (stand-ins for the official infrastructure images, the
platform's image from the Dockerfile's runtime stage). podman 4.3 cannot wait for health in
`depends_on` (podman-compose says so and ignores the conditions), so this script starts the file's
services in its own dependency order and waits for each health check (`podman healthcheck run`)
or one-shot job itself; with Docker, `docker compose up` does the same from the file.

    deploy/local/venv-run.sh deploy/docker/test/smoke.py      (as root, after images.sh)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "deploy" / "docker" / "compose.yaml"
PROJECT = "tmsmoke"
HTTP = int(os.environ.get("TASKMESH_SMOKE_HTTP_PORT", "18080"))
GRPC = int(os.environ.get("TASKMESH_SMOKE_GRPC_PORT", "19090"))
SUBNET = "10.89.77.0/24"
BIN = Path(sys.executable).parent
ENV = {
    **os.environ,
    "CONTAINERS_CONF": str(ROOT / "deploy" / "docker" / "test" / "containers.conf"),
    "TASKMESH_IMAGE": "localhost/taskmesh:test",
    "TASKMESH_PROVISION_IMAGE": "localhost/taskmesh-provision:test",
    "TASKMESH_POSTGRES_IMAGE": "localhost/taskmesh-test/postgres:latest",
    "TASKMESH_NATS_IMAGE": "localhost/taskmesh-test/nats:latest",
    "TASKMESH_OPENBAO_IMAGE": "localhost/taskmesh-test/openbao:latest",
    "TASKMESH_MAIL_IMAGE": "localhost/taskmesh-test/mail:latest",
    "TASKMESH_HTTP_PORT": str(HTTP),
    "TASKMESH_GRPC_PORT": str(GRPC),
    "TASKMESH_MAIL_WEB_PORT": os.environ.get("TASKMESH_SMOKE_MAIL_PORT", "11080"),
    "TASKMESH_PUBLIC_URL": f"http://127.0.0.1:{HTTP}",
    "TASKMESH_COMPOSE_SUBNET": SUBNET,
    # The job of this test calls the gateway inside the compose network.
    "TASKMESH_JOB_ALLOW_NETWORKS": f'["{SUBNET}"]',
}
passed: list[str] = []


def step(message: str) -> None:
    print(f"[smoke] {message}", flush=True)


def check(name: str, ok: bool, detail: object = "") -> None:
    if not ok:
        raise SystemExit(f"FAIL {name}: {detail}")
    passed.append(name)
    step(f"ok: {name}")


def run(*args: str, check_exit: bool = True, quiet: bool = False) -> subprocess.CompletedProcess:
    done = subprocess.run(args, env=ENV, capture_output=True, text=True, cwd=COMPOSE.parent)
    if check_exit and done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done


def compose(*args: str, **kw) -> subprocess.CompletedProcess:
    return run(str(BIN / "podman-compose"), "-p", PROJECT, "-f", str(COMPOSE), *args, **kw)


def container(service: str) -> str:
    return f"{PROJECT}_{service}_1"


def wait(what: str, seconds: float, probe) -> object:
    deadline = time.monotonic() + seconds
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise SystemExit(f"FAIL waiting for {what} ({seconds:.0f} s)")
        time.sleep(1)


def state(service: str) -> dict:
    out = run("podman", "inspect", container(service), "--format", "{{json .State}}", check_exit=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def healthy(service: str) -> bool:
    return run("podman", "healthcheck", "run", container(service), check_exit=False).returncode == 0


def logs(service: str) -> str:
    return run("podman", "logs", "--tail", "40", container(service), check_exit=False).stdout


def start(services: list[str], spec: dict) -> None:
    compose("up", "-d", "--no-deps", *services)
    for service in services:
        if spec[service].get("restart") == "no":
            def finished(service=service):
                s = state(service)
                return s if s.get("Status") == "exited" else None
            s = wait(f"{service} to finish", 300, finished)
            if s.get("ExitCode") != 0:
                raise SystemExit(f"FAIL {service} exited {s.get('ExitCode')}:\n{logs(service)}")
        elif "healthcheck" in spec[service]:
            try:
                wait(f"{service} to be healthy", 180, lambda service=service: healthy(service))
            except SystemExit:
                raise SystemExit(f"FAIL {service} never became healthy:\n{logs(service)}")


def start_order(spec: dict) -> list[list[str]]:
    """The file's services in waves: each after everything its depends_on names."""
    done: set[str] = set()
    waves = []
    while len(done) < len(spec):
        wave = sorted(s for s in spec if s not in done and set(spec[s].get("depends_on", {})) <= done)
        if not wave:
            raise SystemExit(f"a dependency cycle among {set(spec) - done}")
        waves.append(wave)
        done |= set(wave)
    return waves


def rest(method: str, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{HTTP}{path}", method=method)
    if token:
        request.add_header("authorization", f"Bearer {token}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, data, timeout=60) as response:
            text = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as err:
        text, status = err.read().decode(), err.code
    try:
        return status, json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return status, {"text": text}


def user_flow() -> dict:
    status, user = rest("POST", "/v1/users:register",
                        {"username": "ada", "email": "ada@example.org", "password": "correct horse battery"})
    check("register", status == 200, user)

    def login():
        status, body = rest("POST", "/v1/sessions:login", {"email": "ada@example.org", "password": "correct horse battery"})
        return body if status == 200 else None
    session = wait("the registration saga (login)", 60, login)
    token = session["accessToken"]
    check("log in", bool(token))
    status, project = rest("POST", "/v1/projects", {"displayName": "Compose"}, token)
    check("create a project", status == 200, project)
    status, board = rest("POST", f"/v1/{project['name']}/boards", {"displayName": "Main"}, token)
    check("create a board", status == 200, board)
    status, columns = rest("GET", f"/v1/{board['name']}/columns", None, token)
    todo = next(c["name"] for c in columns["columns"] if c["kind"] == "COLUMN_KIND_TODO")
    # The job reads the gateway's own OpenAPI document, by the gateway container's address: a
    # private address is reachable only inside TASKMESH_JOB_ALLOW_NETWORKS, written as an address.
    address = run("podman", "inspect", container("gateway"), "--format",
                  "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}").stdout.strip()
    status, task = rest("POST", f"/v1/{project['name']}/tasks", {
        "title": "Crawl the gateway's contract",
        "column": todo,
        "job": {"webCrawl": {"url": f"http://{address}:8080/openapi.json", "query": "taskmesh"}},
    }, token)
    check("create a task with a job", status == 200, task)

    def execution():
        _, listed = rest("GET", f"/v1/{task['name']}/executions", None, token)
        found = listed.get("executions") or []
        return found[0]["name"] if found else None
    name = wait("the execution made from the task's event", 60, execution)
    request = urllib.request.Request(f"http://127.0.0.1:{HTTP}/v1/{name}:watch",
                                     headers={"authorization": f"Bearer {token}", "accept": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        records = [json.loads(line) for line in response.read().decode().splitlines() if line.strip()]
    last = records[-1]["result"]
    check("watch the job finish", last["state"] == "EXECUTION_STATE_SUCCEEDED", last)
    check("the job found the text", last["result"]["webCrawl"]["matchCount"] > 0, last)
    return {"token": token, "project": project["name"], "todo": todo, "task": task["name"]}


def grpc_list() -> None:
    out = run(str(BIN / "grpcurl"), "-plaintext", f"127.0.0.1:{GRPC}", "list")
    services = out.stdout.split()
    check("grpcurl list on the gRPC port", "taskmesh.tasks.v1.TaskService" in services
          and "grpc.health.v1.Health" in services, out.stdout)


def kill_and_recover(session: dict) -> None:
    token, project = session["token"], session["project"]
    created = []
    for i in range(5):
        status, task = rest("POST", f"/v1/{project}/tasks", {"title": f"before {i}", "column": session["todo"]}, token)
        check(f"task {i} acknowledged", status == 200, task)
        created.append(task["name"])
    before = state("tasks").get("Pid")
    # A crash, not a stop: `podman kill` (like `docker kill`) counts as the user's stop, which
    # restart policies respect; SIGKILL to the container's process is what a crash looks like.
    os.kill(before, 9)
    step(f"killed the tasks container's process ({before}) with SIGKILL")

    def back():
        s = state("tasks")
        return s.get("Status") == "running" and s.get("Pid") != before and healthy("tasks")
    wait("the tasks container to come back by its restart policy", 120, back)
    check("tasks restarted by its restart policy", True)
    def readable(name: str) -> dict | None:
        status, task = rest("GET", f"/v1/{name}", None, token)
        return task if status == 200 else None

    for name in created + [session["task"]]:
        task = wait(f"{name} to be readable again", 60, lambda name=name: readable(name))
        check(f"{name.rsplit('/', 1)[1]} still there after the kill", task["name"] == name, task)
    status, task = rest("POST", f"/v1/{project}/tasks", {"title": "after", "column": session["todo"]}, token)
    check("a task after the restart", status == 200, task)


def main() -> int:
    spec = yaml.safe_load(COMPOSE.read_text())["services"]
    step("cleaning up an earlier run")
    compose("down", "-v", "-t", "5", check_exit=False)
    started = time.monotonic()
    try:
        for wave in start_order(spec):
            step(f"starting {' '.join(wave)}")
            start(wave, spec)
        step(f"the platform is up in {time.monotonic() - started:.0f} s")
        session = user_flow()
        grpc_list()
        kill_and_recover(session)
    finally:
        if os.environ.get("TASKMESH_SMOKE_KEEP") != "1":
            compose("down", "-v", "-t", "10", check_exit=False)
    step(f"all {len(passed)} checks hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
