/** Which images a task may name and whether fleetd may pull them (config `allowedRegistries`). */

export class ImagePolicyError extends Error {
  override readonly name = 'ImagePolicyError';
}
export class ImagePullError extends Error {
  override readonly name = 'ImagePullError';
}

/** The registry host of an image reference, or undefined for a bare name (Docker Hub / local). */
export function registryOf(image: string): string | undefined {
  const slash = image.indexOf('/');
  if (slash < 0) return undefined;
  const first = image.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : undefined;
}

/**
 * Image policy. `allowedRegistries` entries are registry hosts (pull allowed), `docker.io` for
 * bare names from Docker Hub, or `local`: bare names only when already on the engine.
 */
export function imagePolicy(image: string, allowedRegistries: readonly string[]): { allowed: boolean; mayPull: boolean; registry: string } {
  const registry = registryOf(image) ?? 'docker.io';
  if (registryOf(image) === undefined && allowedRegistries.includes('local') && !allowedRegistries.includes('docker.io')) {
    return { allowed: true, mayPull: false, registry: 'local' };
  }
  const allowed = allowedRegistries.includes(registry);
  return { allowed, mayPull: allowed, registry };
}
