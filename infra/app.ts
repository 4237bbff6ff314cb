/**
 * The CDK app: `npm run synth` (offline: no credentials, no lookups; cdk-nag's AwsSolutions
 * checks fail the synth on any unacknowledged finding), or through the CDK CLI for a deploy:
 *
 *   npx aws-cdk@latest deploy --app "npx tsx infra/app.ts" -c maxCapacity=20
 *
 * Context keys are listed in fleet-stack.ts (`CONTEXT_KEYS`) and infra/README.md;
 * `-c key=value` arguments work with `npm run synth -- -c key=value` too. An unknown key or a
 * bad value exits 2 with one line per problem on stderr (the CDK's own keys are left alone).
 */
import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { VALIDATE_AGAINST_DEFAULT_RULES } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import { AgentFleetPropsError } from './fleet-props';
import { AgentFleetStack, fleetStackFromContext } from './fleet-stack';

/**
 * `-c key=value` / `--context key=value` pairs from the command line (the CLI passes context by
 * env). A `-c` without `key=value` after it is an AgentFleetPropsError.
 */
export function contextFromArgs(argv: readonly string[]): Record<string, string> {
  const context: Record<string, string> = {};
  const problems: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] !== '-c' && argv[i] !== '--context') continue;
    const pair = argv[i + 1];
    if (pair === undefined || !pair.includes('=') || pair.startsWith('=')) {
      problems.push(`${argv[i]} ${pair ?? ''}`.trim() + ': got no key=value after it, expected e.g. -c maxCapacity=20');
      continue;
    }
    const [key, ...rest] = argv[++i].split('=');
    context[key] = rest.join('=');
  }
  if (problems.length > 0) throw new AgentFleetPropsError('context', problems);
  return context;
}

export interface BuildAppOptions {
  readonly outdir?: string;
  readonly context?: Record<string, unknown>;
  /** CDK's built-in CloudFormation validation (tests turn it off for speed). @default true */
  readonly builtinCloudFormationValidation?: boolean;
}

export function buildApp(options: BuildAppOptions = {}): { app: App; stack: AgentFleetStack } {
  const app = new App({
    outdir: options.outdir,
    builtinCloudFormationValidation: options.builtinCloudFormationValidation,
    // CloudFormation validation findings (a dependency cycle, a bad property) fail the synth.
    context: { [VALIDATE_AGAINST_DEFAULT_RULES]: true, ...options.context },
  });
  const { stackName, props } = fleetStackFromContext(app.node);
  const stack = new AgentFleetStack(app, stackName, props);
  addAwsSolutionsChecks(app);
  return { app, stack };
}

/** cdk-nag's AwsSolutions checks on every construct of `app`: an unacknowledged finding fails the synth. */
export function addAwsSolutionsChecks(app: App): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
}

/** A bad context key or value as one line per problem (no stack trace), for the command line. */
export function formatUsageError(error: AgentFleetPropsError): string {
  return error.problems.map((problem) => `agent-fleet: ${problem}`).join('\n');
}

if (require.main === module) {
  const started = Date.now();
  // Run by the CDK CLI, CDK_OUTDIR is set (and App uses it); alone, write to infra/cdk.out.
  const outdir = process.env.CDK_OUTDIR ?? path.join(__dirname, 'cdk.out');
  let built: ReturnType<typeof buildApp>;
  try {
    built = buildApp({ outdir, context: contextFromArgs(process.argv.slice(2)) });
  } catch (err) {
    if (!(err instanceof AgentFleetPropsError)) throw err;
    console.error(formatUsageError(err));
    process.exit(2);
  }
  const { app, stack } = built;
  app.synth();
  console.error(`synthesized ${stack.stackName} → ${path.relative(process.cwd(), path.join(outdir, stack.templateFile))} in ${((Date.now() - started) / 1000).toFixed(1)} s (cdk-nag AwsSolutions: no unacknowledged findings)`);
}
