/**
 * What build this is, for `fleetd --version`, `fleet --version` and the instance row: the
 * package version (package.json) and the git commit it was built from when that is known.
 * The commit is `FLEET_BUILD_COMMIT`: scripts/bundle.ts writes it into the bundle at build time
 * (esbuild `define`: `git rev-parse HEAD`, `-dirty` when the tree had changes); a checkout run
 * through tsx reads the variable from the environment. Neither: "unknown", never a guess.
 */
import { version as packageVersion } from '../../package.json';

export const PACKAGE_VERSION: string = packageVersion;

/** The commit as the build recorded it, else "unknown". Written out so esbuild's define can replace it. */
export const BUILD_COMMIT: string = process.env.FLEET_BUILD_COMMIT?.trim() || 'unknown';

/** `0.1.0 (commit 1a2b3c4d…)`: what `--version` prints. */
export function versionLine(name: string): string {
  return `${name} ${PACKAGE_VERSION} (commit ${BUILD_COMMIT})`;
}
