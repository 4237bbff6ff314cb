/**
 * `npm run bake`: build the agent-fleet AMI with Packer (needs AWS credentials and Packer >= 1.7).
 *
 *   npm run bake -- [--region R] [--arch arm64|x86_64]... [--instance-type T]
 *                   [--prepull IMAGE]... [--iam-instance-profile P] [--subnet-id S]
 *                   [--kms-key-id KEY] [--ami-user ACCOUNT]... [--ami-region R]... [--var name=value]...
 *                   [--dry-run] [--help]
 *
 * Bundles fleetd first (into dist/ami-bundle/, the same build as `npm run bundle`), then runs `packer init` and `packer build` on packer/
 * with the variables, one build per --arch (default arm64). Every command is an argument array;
 * no shell sees any value. The AMI ids (ami-..., with their regions) are read from the artifact
 * ids in the manifest Packer writes (dist/packer-manifest.json). See packer/README.md.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { FLEETD_ENTRIES, bundle } from './bundle';

const ROOT = path.resolve(__dirname, '..');
const PACKER_DIR = path.join(ROOT, 'packer');
const MANIFEST = path.join(ROOT, 'dist', 'packer-manifest.json');
/** Only fleetd (and its EC2 tag helper) goes onto the AMI: its own bundle folder (dist/bundle keeps the CLI too). */
const AMI_BUNDLE_DIR = path.join(ROOT, 'dist', 'ami-bundle');
const ARCHES = ['arm64', 'x86_64'] as const;
/** First Packer release that reads the `packer { required_plugins }` block (plugins.pkr.hcl). */
const MIN_PACKER = [1, 7, 0];

export const BAKE_USAGE = `Usage: npm run bake -- [options]

Bundles fleetd and builds the agent-fleet AMI with Packer (>= 1.7), one build per --arch.
Needs AWS credentials that may run a Packer amazon-ebs build. See packer/README.md.

Options:
  --region R                 region to build in (default: AWS_REGION, then AWS_DEFAULT_REGION)
  --arch A                   arm64 (default) or x86_64; repeat for both
  --instance-type T          build instance type
  --prepull IMAGE            image to pre-pull into the AMI; repeatable
  --iam-instance-profile P   build instance profile (needed for ECR pre-pulls)
  --subnet-id S              build subnet (default: the default VPC)
  --kms-key-id KEY           KMS key for the AMI's snapshots
  --ami-user ACCOUNT         share the AMI with an account; repeatable (needs --kms-key-id)
  --ami-region R             copy the AMI to a region; repeatable
  --var name=value           any variable of packer/fleetd.pkr.hcl; repeatable
  --dry-run                  print the commands only
  -h, --help                 this help

Prints each AMI id (ami-...) and its region when the build is done.`;

interface BakeOptions {
  help: boolean;
  region: string;
  arches: string[];
  vars: [string, string][];
  dryRun: boolean;
}

export function parseBakeArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): BakeOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      region: { type: 'string' },
      arch: { type: 'string', multiple: true },
      'instance-type': { type: 'string' },
      prepull: { type: 'string', multiple: true },
      'iam-instance-profile': { type: 'string' },
      'subnet-id': { type: 'string' },
      'kms-key-id': { type: 'string' },
      'ami-user': { type: 'string', multiple: true },
      'ami-region': { type: 'string', multiple: true },
      var: { type: 'string', multiple: true },
      'dry-run': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return { help: true, region: '', arches: [], vars: [], dryRun: true };
  const region = values.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (!region) {
    throw new Error('bake: no region. Pass --region us-east-1 or set AWS_REGION.');
  }
  const arches = values.arch ?? ['arm64'];
  for (const arch of arches) {
    if (!(ARCHES as readonly string[]).includes(arch)) {
      throw new Error(`bake: --arch: got "${arch}", expected one of ${ARCHES.join(', ')}`);
    }
  }
  const vars: [string, string][] = [['region', region]];
  const single: [string | undefined, string][] = [
    [values['instance-type'], 'instance_type'],
    [values['iam-instance-profile'], 'iam_instance_profile'],
    [values['subnet-id'], 'subnet_id'],
    [values['kms-key-id'], 'kms_key_id'],
  ];
  for (const [value, name] of single) if (value !== undefined) vars.push([name, value]);
  // Lists travel as JSON, which is valid HCL.
  const lists: [string[] | undefined, string][] = [
    [values.prepull, 'prepull_images'],
    [values['ami-user'], 'ami_users'],
    [values['ami-region'], 'ami_regions'],
  ];
  for (const [value, name] of lists) if (value !== undefined) vars.push([name, JSON.stringify(value)]);
  for (const raw of values.var ?? []) {
    const eq = raw.indexOf('=');
    if (eq <= 0) throw new Error(`bake: --var: got "${raw}", expected name=value`);
    vars.push([raw.slice(0, eq), raw.slice(eq + 1)]);
  }
  return { help: false, region, arches, vars, dryRun: values['dry-run'] ?? false };
}

function run(cmd: string, args: string[], dryRun: boolean): void {
  console.log(`$ ${[cmd, ...args].map((a) => JSON.stringify(a)).join(' ')}`);
  if (dryRun) return;
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, CHECKPOINT_DISABLE: '1' } });
  if (r.error) throw new Error(`bake: could not run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`bake: ${cmd} ${args[0]} exited with ${r.status ?? r.signal}`);
}

function packerVersion(): number[] {
  const r = spawnSync('packer', ['version'], { encoding: 'utf8', env: { ...process.env, CHECKPOINT_DISABLE: '1' } });
  if (r.error || r.status !== 0) {
    throw new Error('bake: packer not found. Install Packer >= 1.7 (https://developer.hashicorp.com/packer/install).');
  }
  const m = /v?(\d+)\.(\d+)\.(\d+)/.exec(r.stdout);
  if (!m) throw new Error(`bake: cannot read the Packer version from "${r.stdout.trim()}"`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function atLeast(v: number[], min: number[]): boolean {
  for (let i = 0; i < min.length; i++) if (v[i] !== min[i]) return v[i] > min[i];
  return true;
}

function gitVersion(): string {
  const sha = spawnSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
  if (sha.status !== 0) return 'unknown';
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' });
  return sha.stdout.trim() + (dirty.stdout.trim() ? '-dirty' : '');
}

/**
 * The AMIs in a Packer amazon-ebs artifact id: `region:ami-id`, comma-separated when the AMI
 * was copied to more regions (`eu-west-1:ami-0a...,us-east-1:ami-0b...`).
 */
export function amiIdsFromArtifactId(artifactId: string): { region: string; amiId: string }[] {
  return artifactId.split(',').map((part) => {
    const m = /^\s*([a-z0-9-]+):(ami-[0-9a-f]{8,17})\s*$/.exec(part);
    if (!m) throw new Error(`bake: cannot read an AMI id from Packer's artifact id ${JSON.stringify(artifactId)}; expected region:ami-... (see dist/packer-manifest.json)`);
    return { region: m[1], amiId: m[2] };
  });
}

function reportAmis(): void {
  if (!fs.existsSync(MANIFEST)) return;
  const manifest = JSON.parse(fs.readFileSync(MANIFEST, 'utf8')) as {
    last_run_uuid: string;
    builds: { packer_run_uuid: string; artifact_id: string; custom_data?: Record<string, string> }[];
  };
  for (const b of manifest.builds.filter((x) => x.packer_run_uuid === manifest.last_run_uuid)) {
    for (const { region, amiId } of amiIdsFromArtifactId(b.artifact_id)) {
      console.log(`bake: ${b.custom_data?.arch ?? '?'} AMI ${amiId} in ${region} (fleetd ${b.custom_data?.fleetd_version ?? '?'})`);
    }
  }
}

async function main(): Promise<void> {
  let opts: BakeOptions;
  try {
    opts = parseBakeArgs(process.argv.slice(2));
  } catch (err) {
    // node:util's parseArgs says "Unknown option '--x'"; point at the list.
    throw new Error(`bake: ${(err as Error).message.replace(/^bake: /, '')} (npm run bake -- --help lists the options)`, { cause: err });
  }
  if (opts.help) {
    console.log(BAKE_USAGE);
    return;
  }
  if (!opts.dryRun) {
    const version = packerVersion();
    if (!atLeast(version, MIN_PACKER)) {
      throw new Error(
        `bake: packer ${version.join('.')} is too old to build (it cannot install the amazon plugin); ` +
          `install Packer >= ${MIN_PACKER.join('.')}. Debian's packer 1.6 is only used for packer/check.sh.`,
      );
    }
  }
  const fleetd = FLEETD_ENTRIES;
  if (opts.dryRun) {
    console.log(`bake: would bundle ${fleetd.map((e) => e.source).join(', ')} into ${path.relative(ROOT, AMI_BUNDLE_DIR)}/`);
  } else {
    const built = await bundle(fleetd, AMI_BUNDLE_DIR);
    console.log(`bake: bundled ${built.files.join(', ')} in ${built.seconds.toFixed(1)} s`);
  }
  const fleetdVersion = gitVersion();
  run('packer', ['init', PACKER_DIR], opts.dryRun);
  for (const arch of opts.arches) {
    const vars = [...opts.vars, ['arch', arch], ['fleetd_version', fleetdVersion], ['manifest_path', MANIFEST], ['fleetd_bundle_dir', AMI_BUNDLE_DIR]];
    run('packer', ['build', ...vars.flatMap(([k, v]) => ['-var', `${k}=${v}`]), PACKER_DIR], opts.dryRun);
  }
  if (!opts.dryRun) reportAmis();
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
