// The notifications stream of the generated TypeScript client over grpc-web, as a browser would
// read it: SubscribeNotifications from a cursor, printing `<cursor> <title>` for each of the first
// COUNT notifications, then closing the stream.
//
// Usage: node notifications.mjs GENERATED_DIR GATEWAY_BASE_URL ACCESS_TOKEN USER CURSOR COUNT
// (see smoke.sh). Gives up after 20 seconds.
import { pathToFileURL } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

const [generated, baseUrl, token, user, cursor, count] = process.argv.slice(2);
const { NotificationService } = await import(
  pathToFileURL(`${generated}/taskmesh/notifications/v1/notifications_pb.js`).href
);
const transport = createGrpcWebTransport({ baseUrl, useBinaryFormat: true });
const notifications = createClient(NotificationService, transport);
const signal = AbortSignal.timeout(20000);
let seen = 0;
for await (const notification of notifications.subscribeNotifications(
  { parent: user, cursor },
  { headers: { authorization: `Bearer ${token}` }, signal },
)) {
  console.log(`${notification.cursor} ${notification.title}`);
  seen += 1;
  if (seen >= Number(count)) break;
}
if (seen < Number(count)) throw new Error(`only ${seen} of ${count} notifications came`);
