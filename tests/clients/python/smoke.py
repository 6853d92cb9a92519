"""A Python client generated from the contracts alone, used against a running platform.

Usage: smoke.py REPO_ROOT HOST:PORT ACCESS_TOKEN

Generates message and gRPC stubs for every .proto under proto/ with grpcio-tools (PyPI) into a
temporary directory, then, through the gateway's native gRPC port: a call without credentials is
UNAUTHENTICATED; with the token it reads the caller (GetCurrentUser), creates a project, reads it
back and finds it in ListProjects. Prints one line per step and exits non-zero on any mismatch.
"""

import pathlib
import shutil
import sys
import tempfile

import grpc
from grpc_tools import protoc


def generate(root: pathlib.Path, out: str) -> None:
    proto = root / "proto"
    files = sorted(str(p.relative_to(proto)) for p in proto.rglob("*.proto"))
    # buf/validate/validate.proto, which the contracts import: put there by the installer from the
    # cargo package that ships it.
    validate = root / ".taskmesh" / "protovalidate"
    files.append("buf/validate/validate.proto")
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    code = protoc.main(
        ["protoc", f"-I{proto}", f"-I{validate}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}"]
        + files
    )
    if code != 0:
        sys.exit(f"protoc failed with {code}")


def main() -> None:
    root, target, token = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    out = tempfile.mkdtemp(prefix="taskmesh-python-client-")
    try:
        generate(root, out)
        sys.path.insert(0, out)
        call(target, token)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def call(target: str, token: str) -> None:
    from taskmesh.identity.v1 import identity_pb2, identity_pb2_grpc
    from taskmesh.projects.v1 import projects_pb2, projects_pb2_grpc, resources_pb2

    channel = grpc.insecure_channel(target)
    identity = identity_pb2_grpc.IdentityServiceStub(channel)
    projects = projects_pb2_grpc.ProjectServiceStub(channel)
    auth = [("authorization", f"Bearer {token}")]

    try:
        identity.GetCurrentUser(identity_pb2.GetCurrentUserRequest(), timeout=10)
        sys.exit("a call without credentials was answered")
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED, err.code()
    print("without a token: UNAUTHENTICATED")

    me = identity.GetCurrentUser(identity_pb2.GetCurrentUserRequest(), metadata=auth, timeout=10)
    print(f"GetCurrentUser: {me.name}")

    created = projects.CreateProject(
        projects_pb2.CreateProjectRequest(
            project=resources_pb2.Project(display_name="From Python")
        ),
        metadata=auth,
        timeout=10,
    )
    fetched = projects.GetProject(
        projects_pb2.GetProjectRequest(name=created.name), metadata=auth, timeout=10
    )
    assert fetched.display_name == "From Python", fetched
    listed = projects.ListProjects(projects_pb2.ListProjectsRequest(), metadata=auth, timeout=10)
    assert any(p.name == created.name for p in listed.projects), listed
    print(f"CreateProject, GetProject, ListProjects: {created.name}")


if __name__ == "__main__":
    main()
