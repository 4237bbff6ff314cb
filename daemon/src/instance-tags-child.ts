/**
 * The EC2 tag helper: a child process of fleetd (instance-tags.ts `InstanceTagsProcess`) that
 * holds `@aws-sdk/client-ec2` so fleetd's own heap never does. Bundled as `fleetd-ec2.js`
 * beside fleetd.js. It answers JSON requests on Node's IPC channel, one at a time in arrival
 * order (the parent serializes tag writes anyway), and exits when the parent disconnects (its
 * linger ended, or fleetd is gone). Never started by hand: without an IPC channel it exits 2.
 */
import './quiet-sdk-warning';
import { createAwsClients } from './aws';
import { runTagsRequest, sdkInstanceTags, serializeAwsError, type InstanceTagsReply, type InstanceTagsRequest } from './instance-tags';

if (!process.send) {
  console.error('fleetd-ec2: the EC2 tag helper of fleetd; it runs only as fleetd\'s child (IPC), never by hand');
  process.exit(2);
}

const tags = sdkInstanceTags(createAwsClients().ec2);
let queue: Promise<void> = Promise.resolve();

process.on('message', (m: { id: number } & InstanceTagsRequest) => {
  queue = queue.then(async () => {
    let reply: InstanceTagsReply;
    try {
      const value = await runTagsRequest(tags, m);
      reply = { id: m.id, ok: true, ...(value ? { value } : {}) };
    } catch (err) {
      reply = { id: m.id, ok: false, error: serializeAwsError(err) };
    }
    if (process.connected) process.send!(reply);
  });
});
// The parent let go (linger over) or died: nothing more will come.
process.on('disconnect', () => void queue.then(() => process.exit(0)));
