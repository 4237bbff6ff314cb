/**
 * cdk-nag acknowledgments, each scoped to the construct it concerns and with its reason.
 *
 * Wildcard-resource findings are identified by the resource as cdk-nag renders it
 * (`AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:...]`); `acknowledgeWildcardResource`
 * renders it with cdk-nag's own function, so an acknowledgment follows the props (fleet name,
 * secret prefix, repositories) instead of hard-coding one rendering. That function is not part
 * of cdk-nag's index; cdk-nag is pinned exactly in package.json.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference';
import type { IConstruct } from 'constructs';

export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/** Acknowledges AwsSolutions-IAM5 for one wildcard resource on `scope` (and its children). */
export function acknowledgeWildcardResource(scope: IConstruct, resource: string, reason: string): void {
  const rendered = flattenCfnReference(Stack.of(scope).resolve(resource));
  if (!rendered.includes('*')) return; // no finding to acknowledge
  acknowledge(scope, `AwsSolutions-IAM5[Resource::${rendered}]`, reason);
}

/** Acknowledges AwsSolutions-IAM4 for one AWS managed policy (by name) on `scope`. */
export function acknowledgeManagedPolicy(scope: IConstruct, policyName: string, reason: string): void {
  acknowledge(scope, `AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/${policyName}]`, reason);
}
