// Integration tests run real containers on a 2-core machine: generous per-test time.
jest.setTimeout(180_000);
