// ESLint (flat config): typescript-eslint's type-aware rules over the whole project, tests
// included (tsconfig.json covers them). `npm run lint`; `npm run check` = typecheck + lint, which
// CI runs before the tests. Style is not linted here (no formatter is configured).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.node24/**', '.data/**', '.kafka/**', '.slurm/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: { allowDefaultProject: ['vitest.config.ts'] }, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // Bugs: a promise nobody waits for, or one handed where a callback's result is ignored.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // Rethrowing or rejecting with what a catch caught is fine; new throws must be Errors.
      '@typescript-eslint/only-throw-error': ['error', { allowThrowingUnknown: true, allowThrowingAny: true }],
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      // `const { a: _drop, ...rest } = x` names what it leaves out.
      '@typescript-eslint/no-unused-vars': ['error', { varsIgnorePattern: '^_', argsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      // Interfaces of async functions (a source's act(), an EventLog's close()) may have sync bodies.
      '@typescript-eslint/require-await': 'off',
      // Methods of plain objects of functions (no `this`) are passed around by design.
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    // Tests read untyped JSON answers (structuredContent, query rows) through `any`; typing every
    // such read is left for later. Everything else above holds for tests too.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
);
