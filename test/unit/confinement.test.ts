/**
 * Confinement's pure parts (daemon/src/confinement.ts): what `docker info` says about user
 * namespaces and disk limits, the capability set, and the HostConfig fleetd asks for. The
 * engine itself is exercised in test/integration/confinement.test.ts.
 */
import { TASK_CAPABILITIES, confinedHostConfig, diskLimitReason, engineFacts, isStorageOptRefusal, outputVolumeDir } from '../../daemon/src/confinement';
import { CONTAINER_LABELS, CONTAINER_LABEL_MANAGED_BY_VALUE, LIMITS, parseTaskSpec } from '../../daemon/src/contract';

describe('engineFacts', () => {
  test('an engine without remapping: container root is host root (0:0); ext4 takes no size limit', () => {
    expect(engineFacts({ SecurityOptions: ['name=seccomp,profile=default'], DockerRootDir: '/var/lib/docker', Driver: 'overlay2', DriverStatus: [['Backing Filesystem', 'extfs']] }))
      .toEqual({ userns: false, rootUid: 0, rootGid: 0, sizeLimit: false });
  });

  test('userns-remap=default: the remapped ids come from the data root dockerd made for them', () => {
    expect(engineFacts({ SecurityOptions: ['name=seccomp,profile=default', 'name=userns'], DockerRootDir: '/var/lib/docker/100000.100000', Driver: 'overlay2', DriverStatus: [['Backing Filesystem', 'xfs'], ['Supports d_type', 'true']] }))
      .toEqual({ userns: true, rootUid: 100000, rootGid: 100000, sizeLimit: true });
    expect(engineFacts({ SecurityOptions: ['name=userns'], DockerRootDir: '/data/docker/231072.231073/' })).toMatchObject({ rootUid: 231072, rootGid: 231073 });
  });

  test('a remapping engine whose root dir names no ids is an error, not a silent 0', () => {
    expect(() => engineFacts({ SecurityOptions: ['name=userns'], DockerRootDir: '/var/lib/docker' })).toThrow(/does not name the remapped uid.gid/);
  });

  test('only overlay2 on xfs is offered a size limit; other drivers and missing status are not', () => {
    expect(engineFacts({ Driver: 'devicemapper', DriverStatus: [['Backing Filesystem', 'xfs']] }).sizeLimit).toBe(false);
    expect(engineFacts({ Driver: 'overlay2', DriverStatus: null }).sizeLimit).toBe(false);
    expect(engineFacts({ SecurityOptions: null }).userns).toBe(false);
  });
});

describe('the container HostConfig', () => {
  const files = { payloadFile: '/w/tasks/t/payload.json', outputDir: '/w/tasks/t/output' };

  test('drops every capability and adds back exactly the granted six; no-new-privileges stays', () => {
    const hc = confinedHostConfig({ diskMb: 1024, sizeLimit: false, ...files });
    expect(hc).toEqual({
      SecurityOpt: ['no-new-privileges'],
      CapDrop: ['ALL'],
      CapAdd: ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'SETUID', 'SETGID', 'KILL'],
      Binds: ['/w/tasks/t/payload.json:/fleet/payload.json:ro', '/w/tasks/t/output:/fleet/output:rw'],
    });
    expect(hc.CapAdd).not.toContain('NET_RAW');
    expect(hc.CapAdd).not.toContain('SYS_ADMIN');
    expect([...TASK_CAPABILITIES]).toEqual(hc.CapAdd);
  });

  test('where the engine bounds disk: a writable-layer size, and /fleet/output an anonymous local volume of the same size', () => {
    const hc = confinedHostConfig({ diskMb: 512, sizeLimit: true, ...files });
    expect(hc.StorageOpt).toEqual({ size: '512M' });
    expect(hc.Binds).toEqual(['/w/tasks/t/payload.json:/fleet/payload.json:ro']);
    expect(hc.Mounts).toEqual([{ Type: 'volume', Source: '', Target: '/fleet/output', VolumeOptions: { NoCopy: true, Labels: { [CONTAINER_LABELS.managedBy]: CONTAINER_LABEL_MANAGED_BY_VALUE }, DriverConfig: { Name: 'local', Options: { size: '512M' } } } }]);
    const plain = confinedHostConfig({ diskMb: 512, sizeLimit: false, ...files });
    expect(plain).not.toHaveProperty('StorageOpt');
    expect(plain).not.toHaveProperty('Mounts');
  });

  test("the volume's host directory is found by its destination; a bind is not a volume", () => {
    expect(outputVolumeDir({ Mounts: [{ Type: 'bind', Destination: '/fleet/payload.json', Source: '/w/p' }, { Type: 'volume', Destination: '/fleet/output', Source: '/var/lib/docker/volumes/abc/_data' }] })).toBe('/var/lib/docker/volumes/abc/_data');
    expect(outputVolumeDir({ Mounts: [{ Type: 'bind', Destination: '/fleet/output', Source: '/w/o' }] })).toBeUndefined();
    expect(outputVolumeDir(undefined)).toBeUndefined();
  });

  test("the engine's refusal of storage-opt is recognised; other errors are not", () => {
    expect(isStorageOptRefusal({ statusCode: 400, message: '(HTTP code 400) unexpected - --storage-opt is supported only for overlay over xfs with \'pquota\' mount option' })).toBe(true);
    expect(isStorageOptRefusal({ statusCode: 500, message: 'storage-opt size is not supported' })).toBe(true);
    expect(isStorageOptRefusal({ statusCode: 404, message: 'No such image: x' })).toBe(false);
    expect(isStorageOptRefusal({ statusCode: 500, message: 'create abc: quota size requested but no quota support' })).toBe(true);
    expect(isStorageOptRefusal(new Error('storage-opt but no status'))).toBe(false);
  });

  test('the disk-limit reason names the limit, the place and the exit code', () => {
    expect(diskLimitReason(16, '/fleet/output', 1)).toBe('the task wrote more than its disk limit (16 MiB) to /fleet/output (exit code 1)');
  });
});

describe('spec.disk_mb', () => {
  test('defaults to LIMITS.defaultDiskMb and is bounded', () => {
    const ok = parseTaskSpec({ image: 'agent:1' });
    expect(ok.ok && ok.value.disk_mb).toBe(LIMITS.defaultDiskMb);
    const small = parseTaskSpec({ image: 'agent:1', disk_mb: LIMITS.minDiskMb - 1 });
    expect(small.ok ? [] : small.problems.join()).toMatch(/disk_mb: expected at least 16 MiB/);
    const big = parseTaskSpec({ image: 'agent:1', disk_mb: LIMITS.maxDiskMb + 1 });
    expect(big.ok ? [] : big.problems.join()).toMatch(/disk_mb: expected at most/);
    expect(parseTaskSpec({ image: 'agent:1', disk_mb: 1.5 }).ok).toBe(false);
  });
});
