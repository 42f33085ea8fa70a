import { configDefaults, defineConfig } from 'vitest/config';

/** Tests that take shared services away (they stop RabbitMQ); see tests/async/rabbitmq-restart.*. */
const DISRUPTIVE = 'tests/**/*.disruptive.test.ts';

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'main',
          include: ['tests/**/*.test.ts'],
          exclude: [...configDefaults.exclude, DISRUPTIVE],
          sequence: { groupOrder: 0 },
        },
      },
      {
        // Runs after every file of `main` has finished, one file at a time, so stopping the shared
        // broker never breaks another test. `vitest run` alone (npm test) keeps this order.
        extends: true,
        test: {
          name: 'disruptive',
          include: [DISRUPTIVE],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
