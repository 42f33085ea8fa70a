// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'generated/',
      'coverage/',
      'node_modules/',
      'bench/results/',
      'tests/artifacts/',
      'data/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        console: 'readonly',
        process: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        Buffer: 'readonly',
        fetch: 'readonly',
        document: 'readonly',
        window: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  {
    // On PostgreSQL statements run prepared per connection; one reading `*` fails once a later version's migration
    // adds a column (src/store/database.ts). Name the columns: PAYMENT_COLUMNS, REFUND_COLUMNS and the rest.
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'CallExpression[callee.property.name=/^(selectAll|returningAll)$/]',
          message: 'Name the columns (database.ts: PAYMENT_COLUMNS, REFUND_COLUMNS, ...) instead of `*`.',
        },
      ],
    },
  },
);
