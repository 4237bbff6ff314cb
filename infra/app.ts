/**
 * The CDK app: `npm run synth` (offline: no credentials, no lookups; cdk-nag's AwsSolutions
 * checks fail the synth on any unacknowledged finding), or through the CDK CLI for a deploy:
 *
 *   npx aws-cdk@latest deploy --app "npx tsx infra/app.ts" -c maxCapacity=20
 *
 * Context keys are listed in fleet-stack.ts (`fleetPropsFromContext`) and infra/README.md;
 * `-c key=value` arguments work with `npm run synth -- -c key=value` too.
 */
import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { VALIDATE_AGAINST_DEFAULT_RULES } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import { AgentFleetStack, fleetPropsFromContext } from './fleet-stack';

/** `-c key=value` / `--context key=value` pairs from the command line (the CLI passes context by env). */
export function contextFromArgs(argv: readonly string[]): Record<string, string> {
  const context: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    if ((argv[i] === '-c' || argv[i] === '--context') && argv[i + 1]?.includes('=')) {
      const [key, ...rest] = argv[++i].split('=');
      context[key] = rest.join('=');
    }
  }
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
  const stackName = String(app.node.tryGetContext('stackName') ?? 'AgentFleet');
  const stack = new AgentFleetStack(app, stackName, { fleet: fleetPropsFromContext(app.node) });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}

if (require.main === module) {
  const started = Date.now();
  // Run by the CDK CLI, CDK_OUTDIR is set (and App uses it); alone, write to infra/cdk.out.
  const outdir = process.env.CDK_OUTDIR ?? path.join(__dirname, 'cdk.out');
  const { app, stack } = buildApp({ outdir, context: contextFromArgs(process.argv.slice(2)) });
  app.synth();
  console.error(`synthesized ${stack.stackName} → ${path.relative(process.cwd(), path.join(outdir, stack.templateFile))} in ${((Date.now() - started) / 1000).toFixed(1)} s (cdk-nag AwsSolutions: no unacknowledged findings)`);
}
