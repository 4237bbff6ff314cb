'use strict';
// Two projects: `unit` (no stack needed) and `integration` (real Docker + moto; the global setup
// brings the local stack up when it is not running). `npm test` runs both.
// ts-jest transpiles each file on its own (isolatedModules): type checking is `npm run lint`'s
// job (tsc --noEmit over the whole project), which cut the unit suite's CPU time about 5x.
const tsJest = ['ts-jest', { tsconfig: 'tsconfig.jest.json' }];
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testMatch: ['<rootDir>/test/unit/**/*.test.ts', '<rootDir>/infra/test/**/*.test.ts'],
      transform: { '^.+\\.ts$': tsJest },
      testEnvironment: 'node',
    },
    {
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      transform: { '^.+\\.ts$': tsJest },
      testEnvironment: 'node',
      globalSetup: '<rootDir>/test/helpers/global-setup.ts',
      setupFilesAfterEnv: ['<rootDir>/test/helpers/integration-timeout.ts'],
      slowTestThreshold: 30,
    },
  ],
  maxWorkers: 2,
};
