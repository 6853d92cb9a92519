// A TypeScript client generated from the contracts alone (protoc-gen-es, emitted as JavaScript),
// used against a running platform over grpc-web, as a browser would.
//
// Usage: node smoke.mjs GENERATED_DIR GATEWAY_BASE_URL ACCESS_TOKEN (see smoke.sh)
//
// A call without credentials is UNAUTHENTICATED; with the token it reads the caller, creates a
// project, reads it back and finds it in ListProjects. Prints one line per step; any mismatch
// throws, and the process exits non-zero.
import { pathToFileURL } from "node:url";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

const [generated, baseUrl, token] = process.argv.slice(2);
const load = (path) => import(pathToFileURL(`${generated}/${path}`).href);
const { IdentityService } = await load("taskmesh/identity/v1/identity_pb.js");
const { ProjectService } = await load("taskmesh/projects/v1/projects_pb.js");

const transport = createGrpcWebTransport({ baseUrl, useBinaryFormat: true });
const identity = createClient(IdentityService, transport);
const projects = createClient(ProjectService, transport);
const headers = { authorization: `Bearer ${token}` };

try {
  await identity.getCurrentUser({});
  throw new Error("a call without credentials was answered");
} catch (err) {
  if (!(err instanceof ConnectError) || err.code !== Code.Unauthenticated) throw err;
}
console.log("without a token: UNAUTHENTICATED");

const me = await identity.getCurrentUser({}, { headers });
console.log(`GetCurrentUser: ${me.name}`);

const created = await projects.createProject(
  { project: { displayName: "From TypeScript" } },
  { headers },
);
const fetched = await projects.getProject({ name: created.name }, { headers });
if (fetched.displayName !== "From TypeScript") throw new Error(`read back ${fetched.displayName}`);
const listed = await projects.listProjects({}, { headers });
if (!listed.projects.some((p) => p.name === created.name)) throw new Error("not listed");
console.log(`CreateProject, GetProject, ListProjects: ${created.name}`);
